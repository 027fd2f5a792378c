//! What the real cosign (v3.0.6) made, for the tests of this module and of
//! the modules that use it.

/// The public half of a key pair made by `cosign generate-key-pair`;
/// `verify`'s tests hold what it signed.
pub(crate) const PEM: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEa8XqzR9kNP5u1E0ieFZuMk78XLfj
uA7koJ/BZDJtngBXNRqb1YprQD++KXaZxKIBTPO0svGlDwsp5nA556oZxA==
-----END PUBLIC KEY-----
";

/// A bundle `cosign sign --new-bundle-format` (v3.0.6) attached to
/// `sha256:91ff0910...` with the key of `PEM`.
pub(crate) const DSSE_BUNDLE: &str = r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"RhRMHAzvD4LoyUdqfVwvlakXiQCcnG5wbxe7ekkmLvs="}},"dsseEnvelope":{"payload":"eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEiLCJzdWJqZWN0IjpbeyJkaWdlc3QiOnsic2hhMjU2IjoiOTFmZjA5MTBkMjE5ZGRmZDU0ZmJmMTgzMjMxNDk3ODBiNTM0M2RhMmM1NThiMWU5Y2RmNmRmN2ZlMWU2NWNmMCJ9LCJhbm5vdGF0aW9ucyI6e319XSwicHJlZGljYXRlVHlwZSI6Imh0dHBzOi8vc2lnc3RvcmUuZGV2L2Nvc2lnbi9zaWduL3YxIiwicHJlZGljYXRlIjp7fX0=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"MEUCIQDyxh3DYEIXf7uwspUrZoXaC60lMrItxFKCpvgcOKJehQIgW9WqcflDPvRZyltX5yRbSXu7v3UST1hiHEauTWpl6+Q="}]}}"#;

/// A P-256 key made from `seed` (deterministic, for tests only): its
/// public PEM, and a legacy signature by it for the image `digest`.
pub(crate) fn signed(seed: u8, digest: &str) -> (String, super::LegacySignature) {
    use base64::Engine;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::{DerSignature, SigningKey};
    use p256::pkcs8::{EncodePublicKey, LineEnding};

    let mut secret = [0x11u8; 32];
    secret[31] = seed.max(1);
    let key = SigningKey::from_slice(&secret).expect("a valid scalar");
    let pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("PEM");
    let payload = simple_signing(digest);
    let signature: DerSignature = key.sign(payload.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(signature.as_bytes());
    (
        pem,
        super::LegacySignature {
            payload: payload.into_bytes(),
            signature,
            ..Default::default()
        },
    )
}

/// A keyless signature of the image `digest`, made offline with
/// `keyless::fixtures` (a test CA, a Fulcio-like leaf for
/// [`ISSUER`](crate::keyless::fixtures::ISSUER) and
/// [`EMAIL`](crate::keyless::fixtures::EMAIL), a test log key): the
/// trusted root that trusts it (JSON), the legacy layer cosign would push
/// (certificate and Rekor bundle annotations), and a v0.1 bundle with the
/// same certificate and log entry over a message signature.
pub(crate) fn keyless_signed(digest: &str) -> (String, super::LegacySignature, Vec<u8>) {
    use crate::keyless::fixtures::{Fixture, INDEX, LeafSpec, hex, pem};
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use sha2::Digest;

    let payload = simple_signing(digest).into_bytes();
    let ca = crate::keyless::fixtures::root_ca("test fulcio");
    let (leaf, key) = crate::keyless::fixtures::leaf(&ca, LeafSpec::default());
    let f = Fixture::signing(vec![leaf], key, &[std::slice::from_ref(&ca.der)], payload);
    let rekor = serde_json::json!({
        "SignedEntryTimestamp": STANDARD.encode(&f.set),
        "Payload": {
            "body": STANDARD.encode(&f.body),
            "integratedTime": f.time,
            "logIndex": INDEX,
            "logID": hex(&f.log_id),
        },
    });
    let legacy = super::LegacySignature {
        payload: f.signed.clone(),
        signature: STANDARD.encode(&f.signature),
        certificate: Some(pem(&f.chain[0])),
        chain: None,
        rekor: Some(rekor.to_string()),
    };
    let bundle = serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "verificationMaterial": {
            "x509CertificateChain": {"certificates": [{"rawBytes": STANDARD.encode(&f.chain[0])}]},
            "tlogEntries": [{
                "logIndex": INDEX.to_string(),
                "logId": {"keyId": STANDARD.encode(&f.log_id)},
                "integratedTime": f.time.to_string(),
                "inclusionPromise": {"signedEntryTimestamp": STANDARD.encode(&f.set)},
                "canonicalizedBody": STANDARD.encode(&f.body),
            }],
        },
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": STANDARD.encode(sha2::Sha256::digest(&f.signed))},
            "signature": STANDARD.encode(&f.signature),
        },
    });
    let root = String::from_utf8(f.root_json).expect("JSON");
    (root, legacy, bundle.to_string().into_bytes())
}

/// cosign's simple-signing payload for the image `digest`.
fn simple_signing(digest: &str) -> String {
    serde_json::json!({
        "critical": {
            "identity": {"docker-reference": "example.com/test"},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature"
        },
        "optional": null
    })
    .to_string()
}
