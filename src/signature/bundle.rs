//! The Sigstore bundle (`application/vnd.dev.sigstore.bundle.v0.3+json`,
//! v0.1 and v0.2 alike), as cosign v3 attaches it to an image: its
//! verification material (a public key's hint, or a certificate for
//! keyless signing) and its content, either a DSSE envelope whose payload
//! is an in-toto statement naming the image as its subject, or a message
//! signature over the image manifest (whose sha256 is the image digest).
//!
//! Only what verification needs is read, each field bounded; unknown
//! fields are passed over (the bundle format grows).

use serde::Deserialize;

use super::error::{Error, base64, json};
use super::sigstore::{RawTlogEntry, Tlog};
use crate::spec::limits::{
    MAX_BUNDLE_BYTES, MAX_CERTIFICATE_CHAIN, MAX_ENVELOPE_ITEMS, MAX_SIGNATURE_LEN,
};

/// The media type prefix of a Sigstore bundle (`...v0.3+json`).
pub const BUNDLE_MEDIA_TYPE_PREFIX: &str = "application/vnd.dev.sigstore.bundle";

/// The DSSE payload type of an in-toto statement.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";

/// A bundle, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    /// The hint of the key that signed it (base64 sha256 of its DER), when
    /// it names one.
    pub hint: Option<String>,
    /// Whether it carries a certificate: keyless signing.
    pub keyless: bool,
    /// When keyless: its certificates (DER, leaf first).
    pub chain: Vec<Vec<u8>>,
    /// When keyless: its first transparency log entry, when that has the
    /// inclusion promise (SET) an offline check needs.
    pub tlog: Option<Tlog>,
    pub content: BundleContent,
}

/// What a bundle signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BundleContent {
    Dsse(Dsse),
    Message(MessageSignature),
}

/// A DSSE envelope: signatures over the pre-authentication encoding of
/// its payload type and payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dsse {
    pub payload_type: String,
    pub payload: Vec<u8>,
    /// DER signatures, at most [`MAX_ENVELOPE_ITEMS`].
    pub signatures: Vec<Vec<u8>>,
}

impl Dsse {
    /// DSSE's PAE: what each signature signs.
    pub fn pae(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.payload.len() + self.payload_type.len() + 32);
        out.extend_from_slice(b"DSSEv1 ");
        out.extend_from_slice(self.payload_type.len().to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.payload_type.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.payload.len().to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(&self.payload);
        out
    }

    /// The sha256 digests (lowercase hex) of the in-toto statement's
    /// subjects.
    pub fn subjects(&self) -> Result<Vec<String>, Error> {
        if self.payload_type != IN_TOTO {
            return Err(Error::Invalid {
                what: "the DSSE envelope",
                message: format!(
                    "payloadType is {:?}, not {IN_TOTO:?}",
                    self.payload_type.chars().take(64).collect::<String>()
                ),
            });
        }
        let statement: Statement = json(&self.payload, MAX_BUNDLE_BYTES, "the in-toto statement")?;
        if statement.subject.len() > MAX_ENVELOPE_ITEMS {
            return Err(Error::Invalid {
                what: "the in-toto statement",
                message: format!("more than {MAX_ENVELOPE_ITEMS} subjects"),
            });
        }
        Ok(statement
            .subject
            .into_iter()
            .filter_map(|s| s.digest.sha256)
            .collect())
    }
}

/// A signature over the image manifest, by its digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageSignature {
    /// The sha256 the signature is over.
    pub digest: Vec<u8>,
    pub signature: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    media_type: String,
    verification_material: Material,
    #[serde(default)]
    dsse_envelope: Option<RawDsse>,
    #[serde(default)]
    message_signature: Option<RawMessage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Material {
    #[serde(default)]
    public_key: Option<Hint>,
    /// v0.3.
    #[serde(default)]
    certificate: Option<RawBytes>,
    /// v0.1 and v0.2, leaf first.
    #[serde(default)]
    x509_certificate_chain: Option<RawChain>,
    #[serde(default)]
    tlog_entries: Vec<RawTlogEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytes {
    raw_bytes: String,
}

#[derive(Deserialize)]
struct RawChain {
    certificates: Vec<RawBytes>,
}

impl Material {
    /// The certificates (leaf first) and first log entry of a keyless
    /// bundle; nothing for a key's.
    fn keyless(&self) -> Result<(Vec<Vec<u8>>, Option<Tlog>), Error> {
        let raw: Vec<&RawBytes> = match (&self.certificate, &self.x509_certificate_chain) {
            (Some(leaf), _) => vec![leaf],
            (None, Some(chain)) => chain.certificates.iter().collect(),
            (None, None) => return Ok((Vec::new(), None)),
        };
        if raw.is_empty() || raw.len() > MAX_CERTIFICATE_CHAIN {
            return Err(Error::Invalid {
                what: "the Sigstore bundle",
                message: format!(
                    "has {} certificates, not 1 to {MAX_CERTIFICATE_CHAIN}",
                    raw.len()
                ),
            });
        }
        if self.tlog_entries.len() > MAX_ENVELOPE_ITEMS {
            return Err(Error::Invalid {
                what: "the Sigstore bundle",
                message: format!("has more than {MAX_ENVELOPE_ITEMS} tlogEntries"),
            });
        }
        let chain = raw
            .iter()
            .map(|c| base64(&c.raw_bytes, "a bundle certificate"))
            .collect::<Result<_, _>>()?;
        let tlog = match self.tlog_entries.first() {
            Some(entry) => entry.read()?,
            None => None,
        };
        Ok((chain, tlog))
    }
}

#[derive(Deserialize)]
struct Hint {
    #[serde(default)]
    hint: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDsse {
    payload: String,
    payload_type: String,
    signatures: Vec<RawSig>,
}

#[derive(Deserialize)]
struct RawSig {
    sig: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMessage {
    message_digest: RawDigest,
    signature: String,
}

#[derive(Deserialize)]
struct RawDigest {
    algorithm: String,
    digest: String,
}

#[derive(Deserialize)]
struct Statement {
    subject: Vec<Subject>,
}

#[derive(Deserialize)]
struct Subject {
    digest: SubjectDigest,
}

#[derive(Deserialize)]
struct SubjectDigest {
    #[serde(default)]
    sha256: Option<String>,
}

impl Bundle {
    /// Reads a bundle of at most [`MAX_BUNDLE_BYTES`].
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let raw: Raw = json(bytes, MAX_BUNDLE_BYTES, "the Sigstore bundle")?;
        let invalid = |message: String| Error::Invalid {
            what: "the Sigstore bundle",
            message,
        };
        if !raw.media_type.starts_with(BUNDLE_MEDIA_TYPE_PREFIX) {
            return Err(invalid(format!(
                "mediaType {:?} is not a Sigstore bundle's",
                raw.media_type.chars().take(64).collect::<String>()
            )));
        }
        let material = raw.verification_material;
        let keyless = material.certificate.is_some() || material.x509_certificate_chain.is_some();
        let (chain, tlog) = material.keyless()?;
        let hint = material.public_key.and_then(|k| k.hint);
        let content = match (raw.dsse_envelope, raw.message_signature) {
            (Some(dsse), None) => BundleContent::Dsse(read_dsse(dsse)?),
            (None, Some(message)) => BundleContent::Message(read_message(message)?),
            _ => {
                return Err(invalid(
                    "has neither or both of dsseEnvelope and messageSignature".into(),
                ));
            }
        };
        Ok(Self {
            hint,
            keyless,
            chain,
            tlog,
            content,
        })
    }
}

fn read_dsse(raw: RawDsse) -> Result<Dsse, Error> {
    if raw.signatures.is_empty() || raw.signatures.len() > MAX_ENVELOPE_ITEMS {
        return Err(Error::Invalid {
            what: "the DSSE envelope",
            message: format!(
                "has {} signatures, not 1 to {MAX_ENVELOPE_ITEMS}",
                raw.signatures.len()
            ),
        });
    }
    let signatures = raw
        .signatures
        .iter()
        .map(|s| signature(&s.sig, "a DSSE signature"))
        .collect::<Result<_, _>>()?;
    Ok(Dsse {
        payload_type: raw.payload_type,
        payload: base64(&raw.payload, "the DSSE payload")?,
        signatures,
    })
}

fn read_message(raw: RawMessage) -> Result<MessageSignature, Error> {
    if raw.message_digest.algorithm != "SHA2_256" {
        return Err(Error::Invalid {
            what: "the message signature",
            message: format!(
                "digest algorithm {:?} is not SHA2_256",
                raw.message_digest
                    .algorithm
                    .chars()
                    .take(32)
                    .collect::<String>()
            ),
        });
    }
    let digest = base64(&raw.message_digest.digest, "the message digest")?;
    if digest.len() != 32 {
        return Err(Error::Invalid {
            what: "the message signature",
            message: format!("its digest is {} bytes, not 32", digest.len()),
        });
    }
    Ok(MessageSignature {
        digest,
        signature: signature(&raw.signature, "the message signature")?,
    })
}

/// A base64 signature of at most [`MAX_SIGNATURE_LEN`] characters.
pub(super) fn signature(text: &str, what: &'static str) -> Result<Vec<u8>, Error> {
    if text.len() > MAX_SIGNATURE_LEN {
        return Err(Error::TooLarge {
            what,
            len: text.len(),
            max: MAX_SIGNATURE_LEN,
        });
    }
    base64(text, what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::fixtures::DSSE_BUNDLE;
    use proptest::prelude::*;

    #[test]
    fn reads_cosigns_dsse_bundle() {
        let bundle = Bundle::parse(DSSE_BUNDLE.as_bytes()).expect("bundle");
        assert_eq!(
            bundle.hint.as_deref(),
            Some("RhRMHAzvD4LoyUdqfVwvlakXiQCcnG5wbxe7ekkmLvs=")
        );
        assert!(!bundle.keyless);
        let BundleContent::Dsse(dsse) = &bundle.content else {
            panic!("not DSSE: {bundle:?}");
        };
        assert_eq!(
            dsse.subjects().expect("statement"),
            ["91ff0910d219ddfd54fbf18323149780b5343da2c558b1e9cdf6df7fe1e65cf0"]
        );
        assert!(
            dsse.pae()
                .starts_with(b"DSSEv1 28 application/vnd.in-toto+json ")
        );
    }

    #[test]
    fn reads_a_message_signature() {
        let text = serde_json::json!({
            "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.2",
            "verificationMaterial": {"certificate": {"rawBytes": "AA=="}, "tlogEntries": [{"logIndex": "7", "logId": {"keyId": "AQ=="}, "integratedTime": "9", "inclusionPromise": {"signedEntryTimestamp": "Ag=="}, "canonicalizedBody": "e30="}]},
            "messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}, "signature": "MEUC"}
        });
        let bundle = Bundle::parse(text.to_string().as_bytes()).expect("bundle");
        assert!(bundle.keyless);
        assert_eq!(bundle.chain, [vec![0]]);
        let tlog = bundle.tlog.as_ref().expect("tlog");
        assert_eq!((tlog.log_index, tlog.integrated_time), (7, 9));
        assert_eq!(
            (tlog.log_id.as_slice(), tlog.set.as_slice()),
            (&[1u8][..], &[2u8][..])
        );
        assert!(matches!(bundle.content, BundleContent::Message(m) if m.digest == [0; 32]));
    }

    #[test]
    fn refuses_what_is_not_one() {
        let material = serde_json::json!({"publicKey": {"hint": "x"}});
        let dsse = serde_json::json!({"payload": "e30=", "payloadType": IN_TOTO, "signatures": [{"sig": "MEUC"}]});
        let message = serde_json::json!({"messageDigest": {"algorithm": "SHA2_256", "digest": "AAAA"}, "signature": "MEUC"});
        let cases = [
            (serde_json::json!({}), "schema"),
            (
                serde_json::json!({"mediaType": "application/json", "verificationMaterial": material, "dsseEnvelope": dsse}),
                "not a Sigstore bundle's",
            ),
            (
                serde_json::json!({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "verificationMaterial": material}),
                "neither or both",
            ),
            (
                serde_json::json!({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "verificationMaterial": material, "dsseEnvelope": dsse, "messageSignature": message}),
                "neither or both",
            ),
            (
                serde_json::json!({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "verificationMaterial": material, "messageSignature": message}),
                "not 32",
            ),
            (
                serde_json::json!({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "verificationMaterial": material,
                    "dsseEnvelope": {"payload": "e30=", "payloadType": IN_TOTO, "signatures": []}}),
                "1 to",
            ),
            (
                serde_json::json!({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "verificationMaterial": material,
                    "dsseEnvelope": {"payload": "!!", "payloadType": IN_TOTO, "signatures": [{"sig": "MEUC"}]}}),
                "base64",
            ),
        ];
        for (value, says) in cases {
            let err = Bundle::parse(value.to_string().as_bytes()).unwrap_err();
            let shown = crate::error::error_chain(&err);
            assert!(shown.contains(says), "{value}: {shown}");
        }
        let other = Dsse {
            payload_type: "text/plain".into(),
            payload: b"{}".to_vec(),
            signatures: vec![],
        };
        assert!(other.subjects().is_err());
    }

    proptest! {
        #[test]
        fn any_bytes_are_read_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let _ = Bundle::parse(&bytes);
        }

        #[test]
        fn any_fields_are_read_or_refused(
            media in "application/vnd.dev.sigstore.bundle.{0,12}|.{0,10}",
            payload in "[A-Za-z0-9+/=]{0,64}|.{0,16}",
            sig in "[A-Za-z0-9+/=]{0,64}|.{0,16}",
            digest in "[A-Za-z0-9+/=]{0,48}",
            dsse in any::<bool>(),
        ) {
            let content = if dsse {
                serde_json::json!({"dsseEnvelope": {"payload": payload, "payloadType": IN_TOTO, "signatures": [{"sig": sig}]}})
            } else {
                serde_json::json!({"messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": digest}, "signature": sig}})
            };
            let mut value = serde_json::json!({"mediaType": media, "verificationMaterial": {"publicKey": {}}});
            for (k, v) in content.as_object().into_iter().flatten() {
                value[k] = v.clone();
            }
            if let Ok(bundle) = Bundle::parse(value.to_string().as_bytes())
                && let BundleContent::Dsse(d) = bundle.content
            {
                let _ = d.subjects();
                let _ = d.pae();
            }
        }
    }
}
