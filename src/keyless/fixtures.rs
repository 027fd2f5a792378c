//! Keyless test material made here, offline, for this module's tests and
//! `signature`'s: a root CA (P-384, as Fulcio's), a Fulcio-like leaf
//! (P-256, issuer extension, email SAN, code signing), a Rekor log key
//! (P-256), a hashedrekord body, its SET and a trusted root naming them.
//! rcgen makes the certificates (a dev-dependency on aws-lc-rs, which
//! tonic already builds) and signs.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    PKCS_ECDSA_P384_SHA384, PublicKeyData, SanType, SigningKey,
};
use serde_json::json;
use sha2::Digest;

use super::root::MEDIA_TYPE;
use super::{Evidence, Failure, Identity, Signed, TlogEntry, TrustedRoot, verify};

pub(crate) const ISSUER: &str = "https://accounts.example.com";
pub(crate) const EMAIL: &str = "alice@example.com";
/// 2025-01-01T00:00:00Z: the leaf's notBefore; it lives ten minutes.
pub(crate) const T0: i64 = 1_735_689_600;
pub(crate) const LIFETIME: i64 = 600;
pub(crate) const INDEX: i64 = 42;
pub(crate) const FULCIO_ISSUER_V2: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 1, 8];
pub(crate) const FULCIO_ISSUER_V1: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 1, 1];

/// Sets `params`' validity to `[from, to]`, Unix seconds.
pub(crate) fn valid(params: &mut CertificateParams, from: i64, to: i64) {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let secs = |t: i64| Duration::from_secs(u64::try_from(t).unwrap());
    params.not_before = epoch + secs(from);
    params.not_after = epoch + secs(to);
}

/// 2020-01-01 to 2040-01-01.
pub(crate) const CA_FROM: i64 = 1_577_836_800;
pub(crate) const CA_TO: i64 = 2_208_988_800;

/// A certificate authority: its certificate (DER) and what signs with it.
pub(crate) struct Ca {
    pub(crate) der: Vec<u8>,
    pub(crate) issuer: Issuer<'static, KeyPair>,
}

pub(crate) fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    valid(&mut params, CA_FROM, CA_TO);
    params
}

pub(crate) fn root_ca(name: &str) -> Ca {
    let params = ca_params(name);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
    let der = params.self_signed(&key).unwrap().der().to_vec();
    Ca {
        der,
        issuer: Issuer::new(params, key),
    }
}

pub(crate) fn intermediate_ca(name: &str, parent: &Ca) -> Ca {
    let params = ca_params(name);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let der = params
        .signed_by(&key, &parent.issuer)
        .unwrap()
        .der()
        .to_vec();
    Ca {
        der,
        issuer: Issuer::new(params, key),
    }
}

/// What a leaf certificate says.
pub(crate) struct LeafSpec {
    pub(crate) issuer: Option<CustomExtension>,
    pub(crate) san: SanType,
    pub(crate) code_signing: bool,
}

impl Default for LeafSpec {
    fn default() -> Self {
        LeafSpec {
            issuer: Some(CustomExtension::from_oid_content(
                FULCIO_ISSUER_V2,
                utf8(ISSUER),
            )),
            san: SanType::Rfc822Name(EMAIL.try_into().unwrap()),
            code_signing: true,
        }
    }
}

/// A short DER UTF8String.
pub(crate) fn utf8(text: &str) -> Vec<u8> {
    let mut der = vec![0x0c, u8::try_from(text.len()).unwrap()];
    der.extend_from_slice(text.as_bytes());
    der
}

/// A Fulcio-like leaf, P-256, valid from T0 for ten minutes, and its key.
pub(crate) fn leaf(ca: &Ca, spec: LeafSpec) -> (Vec<u8>, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = vec![spec.san];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if spec.code_signing {
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    }
    params.custom_extensions = spec.issuer.into_iter().collect();
    valid(&mut params, T0, T0 + LIFETIME);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let der = params.signed_by(&key, &ca.issuer).unwrap().der().to_vec();
    (der, key)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

/// A hashedrekord v0.0.1 body as Rekor canonicalizes it, recording the
/// sha256 of `signed`.
pub(crate) fn body(signature: &[u8], leaf: &[u8], signed: &[u8]) -> Vec<u8> {
    digest_body(signature, leaf, &sha2::Sha256::digest(signed))
}

/// A hashedrekord v0.0.1 body recording the sha256 `digest`.
pub(crate) fn digest_body(signature: &[u8], leaf: &[u8], digest: &[u8]) -> Vec<u8> {
    json!({
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": hex(digest)}},
            "signature": {"content": STANDARD.encode(signature), "publicKey": {"content": STANDARD.encode(pem(leaf))}},
        },
    })
    .to_string()
    .into_bytes()
}

/// A dsse v0.0.1 body recording the hash of `payload` and `signature` by
/// the certificate `leaf`. Its envelope hash is a placeholder: it is not
/// compared.
pub(crate) fn dsse_body(signature: &[u8], leaf: &[u8], payload: &[u8]) -> Vec<u8> {
    json!({
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": hex(&sha2::Sha256::digest(b"envelope"))},
            "payloadHash": {"algorithm": "sha256", "value": hex(&sha2::Sha256::digest(payload))},
            "signatures": [{"signature": STANDARD.encode(signature), "verifier": STANDARD.encode(pem(leaf))}],
        },
    })
    .to_string()
    .into_bytes()
}

/// `key`'s ECDSA signature (DER) over the digest `prehash` as it is.
pub(crate) fn sign_prehash(key: &KeyPair, prehash: &[u8]) -> Vec<u8> {
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    use p256::pkcs8::DecodePrivateKey;
    let key = p256::ecdsa::SigningKey::from_pkcs8_der(&key.serialize_der()).unwrap();
    let signature: p256::ecdsa::Signature = key.sign_prehash(prehash).unwrap();
    signature.to_der().as_bytes().to_vec()
}

/// A SET: `log`'s signature over the canonical JSON (serde_json sorts keys
/// and writes no spaces) of the entry.
pub(crate) fn set(log: &KeyPair, body: &[u8], time: i64, log_id: &[u8]) -> Vec<u8> {
    let payload = json!({
        "body": STANDARD.encode(body),
        "integratedTime": time,
        "logID": hex(log_id),
        "logIndex": INDEX,
    });
    log.sign(payload.to_string().as_bytes()).unwrap()
}

pub(crate) fn trusted_root(log_key: &[u8], cas: &[&[Vec<u8>]]) -> Vec<u8> {
    let authorities: Vec<_> = cas
        .iter()
        .map(|chain| {
            let certificates: Vec<_> = chain
                .iter()
                .map(|der| json!({"rawBytes": STANDARD.encode(der)}))
                .collect();
            json!({
                "subject": {"organization": "example", "commonName": "test"},
                "uri": "https://fulcio.example",
                "certChain": {"certificates": certificates},
                "validFor": {"start": "2020-01-01T00:00:00.000Z"},
            })
        })
        .collect();
    json!({
        "mediaType": MEDIA_TYPE,
        "tlogs": [{
            "baseUrl": "https://rekor.example",
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": STANDARD.encode(log_key),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": {"start": "2020-01-01T00:00:00Z"},
            },
            "logId": {"keyId": STANDARD.encode(sha2::Sha256::digest(log_key))},
        }],
        "certificateAuthorities": authorities,
        "ctlogs": [],
        "timestampAuthorities": [],
    })
    .to_string()
    .into_bytes()
}

/// One signed, logged artifact and the root that trusts it.
pub(crate) struct Fixture {
    pub(crate) root: TrustedRoot,
    /// `root` as JSON, as an input carries it.
    pub(crate) root_json: Vec<u8>,
    pub(crate) log: KeyPair,
    pub(crate) log_id: Vec<u8>,
    pub(crate) chain: Vec<Vec<u8>>,
    pub(crate) leaf_key: KeyPair,
    pub(crate) signed: Vec<u8>,
    pub(crate) signature: Vec<u8>,
    pub(crate) body: Vec<u8>,
    pub(crate) time: i64,
    pub(crate) set: Vec<u8>,
}

impl Fixture {
    /// `chain` signs a simple-signing payload, logged at T0 + 60, under a
    /// root trusting the authorities `cas`.
    pub(crate) fn new(chain: Vec<Vec<u8>>, leaf_key: KeyPair, cas: &[&[Vec<u8>]]) -> Fixture {
        let signed = br#"{"critical":{"identity":{"docker-reference":"example/pkg"},"image":{"docker-manifest-digest":"sha256:00"},"type":"cosign container image signature"},"optional":null}"#.to_vec();
        Fixture::signing(chain, leaf_key, cas, signed)
    }

    /// `chain` signs `signed`, logged at T0 + 60, under a root trusting the
    /// authorities `cas`.
    pub(crate) fn signing(
        chain: Vec<Vec<u8>>,
        leaf_key: KeyPair,
        cas: &[&[Vec<u8>]],
        signed: Vec<u8>,
    ) -> Fixture {
        let log = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let log_der = log.subject_public_key_info();
        let log_id = sha2::Sha256::digest(&log_der).to_vec();
        let root_json = trusted_root(&log_der, cas);
        let root = TrustedRoot::parse(&root_json).unwrap();
        let signature = leaf_key.sign(&signed).unwrap();
        let body = body(&signature, &chain[0], &signed);
        let time = T0 + 60;
        let set = set(&log, &body, time, &log_id);
        Fixture {
            root,
            root_json,
            log,
            log_id,
            chain,
            leaf_key,
            signed,
            signature,
            body,
            time,
            set,
        }
    }

    pub(crate) fn simple(spec: LeafSpec) -> Fixture {
        let ca = root_ca("test fulcio");
        let (der, key) = leaf(&ca, spec);
        Fixture::new(vec![der], key, &[std::slice::from_ref(&ca.der)])
    }

    pub(crate) fn tlog(&self) -> TlogEntry<'_> {
        entry(&self.log_id, self.time, &self.body, &self.set)
    }

    pub(crate) fn evidence(&self) -> Evidence<'_> {
        Evidence {
            chain: &self.chain,
            signature: &self.signature,
            signed: Signed::Bytes(&self.signed),
            tlog: Some(self.tlog()),
        }
    }

    pub(crate) fn verify(&self, identities: &[Identity]) -> Result<(), Failure> {
        verify(&self.root, identities, &self.evidence())
    }

    /// The leaf's signature over the sha256 `digest` as it is (a message
    /// signature), logged as a hashedrekord by the same log at the same
    /// time.
    pub(crate) fn sign_digest(&self, digest: &[u8]) -> Logged {
        let signature = sign_prehash(&self.leaf_key, digest);
        let body = digest_body(&signature, &self.chain[0], digest);
        self.logged(signature, body)
    }

    /// The leaf's signature over a DSSE envelope's `pae`, logged as a dsse
    /// entry of `payload` by the same log at the same time.
    pub(crate) fn sign_dsse(&self, pae: &[u8], payload: &[u8]) -> Logged {
        let signature = self.leaf_key.sign(pae).unwrap();
        let body = dsse_body(&signature, &self.chain[0], payload);
        self.logged(signature, body)
    }

    fn logged(&self, signature: Vec<u8>, body: Vec<u8>) -> Logged {
        let set = set(&self.log, &body, self.time, &self.log_id);
        Logged {
            signature,
            body,
            set,
            time: self.time,
            log_id: self.log_id.clone(),
        }
    }

    /// Logs again at `time`, with a fresh SET.
    pub(crate) fn at(mut self, time: i64) -> Fixture {
        self.time = time;
        self.set = set(&self.log, &self.body, time, &self.log_id);
        self
    }
}

/// The entry `log_id` logged `body` as, at `time`, with the SET `set`.
fn entry<'a>(log_id: &'a [u8], time: i64, body: &'a [u8], set: &'a [u8]) -> TlogEntry<'a> {
    TlogEntry {
        log_id,
        log_index: INDEX,
        integrated_time: time,
        canonicalized_body: body,
        signed_entry_timestamp: set,
    }
}

/// Another signature by a [`Fixture`]'s leaf, logged by its log.
pub(crate) struct Logged {
    pub(crate) signature: Vec<u8>,
    pub(crate) body: Vec<u8>,
    pub(crate) set: Vec<u8>,
    pub(crate) time: i64,
    pub(crate) log_id: Vec<u8>,
}

impl Logged {
    pub(crate) fn tlog(&self) -> TlogEntry<'_> {
        entry(&self.log_id, self.time, &self.body, &self.set)
    }

    /// A bundle's `tlogEntries[0]`, as protobuf's JSON writes it.
    pub(crate) fn bundle_entry(&self, kind: &str) -> serde_json::Value {
        json!({
            "logIndex": INDEX.to_string(),
            "logId": {"keyId": STANDARD.encode(&self.log_id)},
            "kindVersion": {"kind": kind, "version": "0.0.1"},
            "integratedTime": self.time.to_string(),
            "inclusionPromise": {"signedEntryTimestamp": STANDARD.encode(&self.set)},
            "canonicalizedBody": STANDARD.encode(&self.body),
        })
    }
}
