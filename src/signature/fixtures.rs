//! What the real cosign (v3.0.6) made, and keyless signatures made offline
//! in cosign's forms, for the tests of this module and of the modules that
//! use it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

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
    let signature = STANDARD.encode(signature.as_bytes());
    (
        pem,
        super::LegacySignature {
            payload: payload.into_bytes(),
            signature,
            ..Default::default()
        },
    )
}

/// Keyless signatures of one image, made offline with `keyless::fixtures`
/// (a test CA, a Fulcio-like leaf for
/// [`ISSUER`](crate::keyless::fixtures::ISSUER) and
/// [`EMAIL`](crate::keyless::fixtures::EMAIL), a test log key), in each
/// form cosign writes.
pub(crate) struct KeylessSigned {
    /// The trusted root that trusts them (JSON).
    pub(crate) root: String,
    /// The legacy layer cosign would push: the certificate and Rekor
    /// bundle annotations, over a simple-signing payload.
    pub(crate) legacy: super::LegacySignature,
    /// A v0.1 bundle (`x509CertificateChain`) with a message signature
    /// over the image digest, logged as a hashedrekord of that digest.
    pub(crate) message_bundle: Vec<u8>,
    /// A v0.3 bundle (`certificate`) with a DSSE envelope of an in-toto
    /// statement naming the image, logged as a dsse entry (cosign v3's
    /// default).
    pub(crate) dsse_bundle: Vec<u8>,
}

/// [`KeylessSigned`] for the image `digest` (`sha256:<hex>`).
pub(crate) fn keyless_signed(digest: &str) -> KeylessSigned {
    use crate::keyless::fixtures::{Fixture, LeafSpec, leaf, root_ca};

    let ca = root_ca("test fulcio");
    let (der, key) = leaf(&ca, LeafSpec::default());
    let payload = simple_signing(digest).into_bytes();
    let f = Fixture::signing(vec![der], key, &[std::slice::from_ref(&ca.der)], payload);
    let legacy = keyless_legacy(&f, None);
    let root = String::from_utf8(f.root_json.clone()).expect("JSON");
    KeylessSigned {
        root,
        legacy,
        message_bundle: message_bundle(&f, digest),
        dsse_bundle: dsse_bundle(&f, digest),
    }
}

/// A legacy keyless signature of the image `digest` by a leaf of an
/// intermediate CA that only the `dev.sigstore.cosign/chain` annotation
/// carries, and the trusted root (JSON) that lists only the root CA.
pub(crate) fn keyless_signed_through_intermediate(
    digest: &str,
) -> (String, super::LegacySignature) {
    use crate::keyless::fixtures::{Fixture, LeafSpec, intermediate_ca, leaf, pem, root_ca};

    let root = root_ca("test fulcio root");
    let intermediate = intermediate_ca("test fulcio intermediate", &root);
    let (der, key) = leaf(&intermediate, LeafSpec::default());
    let payload = simple_signing(digest).into_bytes();
    let f = Fixture::signing(vec![der], key, &[std::slice::from_ref(&root.der)], payload);
    let legacy = keyless_legacy(&f, Some(pem(&intermediate.der)));
    (String::from_utf8(f.root_json).expect("JSON"), legacy)
}

/// The legacy layer for `f`'s signature, with `chain` as its chain
/// annotation.
fn keyless_legacy(
    f: &crate::keyless::fixtures::Fixture,
    chain: Option<String>,
) -> super::LegacySignature {
    use crate::keyless::fixtures::{INDEX, hex, pem};
    let rekor = serde_json::json!({
        "SignedEntryTimestamp": STANDARD.encode(&f.set),
        "Payload": {
            "body": STANDARD.encode(&f.body),
            "integratedTime": f.time,
            "logIndex": INDEX,
            "logID": hex(&f.log_id),
        },
    });
    super::LegacySignature {
        payload: f.signed.clone(),
        signature: STANDARD.encode(&f.signature),
        certificate: Some(pem(&f.chain[0])),
        chain,
        rekor: Some(rekor.to_string()),
    }
}

/// `f`'s leaf signing the manifest digest `digest` as a v0.1 bundle.
fn message_bundle(f: &crate::keyless::fixtures::Fixture, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    let bytes = super::sigstore::unhex(hex).expect("hex");
    let logged = f.sign_digest(&bytes);
    serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "verificationMaterial": {
            "x509CertificateChain": {"certificates": [{"rawBytes": STANDARD.encode(&f.chain[0])}]},
            "tlogEntries": [logged.bundle_entry("hashedrekord")],
        },
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": STANDARD.encode(&bytes)},
            "signature": STANDARD.encode(&logged.signature),
        },
    })
    .to_string()
    .into_bytes()
}

/// `f`'s leaf signing an in-toto statement naming `digest`, as cosign v3
/// does, in a v0.3 bundle.
fn dsse_bundle(f: &crate::keyless::fixtures::Fixture, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    let statement = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": hex}, "annotations": {}}],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
        "predicate": {},
    })
    .to_string()
    .into_bytes();
    let envelope = super::Dsse {
        payload_type: super::IN_TOTO.to_owned(),
        payload: statement,
        signatures: Vec::new(),
    };
    let logged = f.sign_dsse(&envelope.pae(), &envelope.payload);
    serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {
            "certificate": {"rawBytes": STANDARD.encode(&f.chain[0])},
            "tlogEntries": [logged.bundle_entry("dsse")],
        },
        "dsseEnvelope": {
            "payload": STANDARD.encode(&envelope.payload),
            "payloadType": envelope.payload_type,
            "signatures": [{"sig": STANDARD.encode(&logged.signature)}],
        },
    })
    .to_string()
    .into_bytes()
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
