//! What vouches for a keyless signature, read into owned bytes for
//! `crate::keyless`: the certificate chain (DER, leaf first) and the Rekor
//! entry, from a bundle's `verificationMaterial` or from cosign's legacy
//! annotations (`dev.sigstore.cosign/certificate`, `.../chain`,
//! `.../bundle`).

use serde::Deserialize;

use super::error::{Error, base64, json};
use crate::keyless::TlogEntry;
use crate::spec::limits::{MAX_CERTIFICATE_CHAIN, MAX_REKOR_BUNDLE_LEN};

/// The legacy layer annotation holding the signing certificate (PEM).
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// The legacy layer annotation holding its intermediates (PEM).
pub const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";
/// The legacy layer annotation holding the Rekor entry (JSON).
pub const REKOR_ANNOTATION: &str = "dev.sigstore.cosign/bundle";

/// A Rekor entry, owned (`keyless::TlogEntry` borrows it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tlog {
    pub log_id: Vec<u8>,
    pub log_index: i64,
    pub integrated_time: i64,
    pub body: Vec<u8>,
    pub set: Vec<u8>,
}

impl Tlog {
    /// The entry, as `keyless` reads it.
    pub fn entry(&self) -> TlogEntry<'_> {
        TlogEntry {
            log_id: &self.log_id,
            log_index: self.log_index,
            integrated_time: self.integrated_time,
            canonicalized_body: &self.body,
            signed_entry_timestamp: &self.set,
        }
    }
}

/// The DER certificates of PEM `text` (each `-----BEGIN CERTIFICATE-----`
/// block, in order), at most [`MAX_CERTIFICATE_CHAIN`].
pub fn pem_certificates(text: &str, what: &'static str) -> Result<Vec<Vec<u8>>, Error> {
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(END) {
        let (block, tail) = rest.split_at(at + END.len());
        rest = tail;
        if out.len() == MAX_CERTIFICATE_CHAIN {
            return Err(Error::Invalid {
                what,
                message: format!("more than {MAX_CERTIFICATE_CHAIN} certificates"),
            });
        }
        match x509_cert::der::pem::decode_vec(block.trim().as_bytes()) {
            Ok(("CERTIFICATE", der)) => out.push(der),
            _ => {
                return Err(Error::Invalid {
                    what,
                    message: "not PEM certificates".into(),
                });
            }
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RekorBundle {
    signed_entry_timestamp: String,
    payload: RekorPayload,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RekorPayload {
    body: String,
    integrated_time: i64,
    log_index: i64,
    #[serde(rename = "logID")]
    log_id: String,
}

/// cosign's `dev.sigstore.cosign/bundle` annotation: `logID` in hex, the
/// body and the SET in base64.
pub fn rekor_bundle(text: &str) -> Result<Tlog, Error> {
    const WHAT: &str = "the Rekor bundle annotation";
    let raw: RekorBundle = json(text.as_bytes(), MAX_REKOR_BUNDLE_LEN, WHAT)?;
    Ok(Tlog {
        log_id: unhex(&raw.payload.log_id).ok_or_else(|| Error::Invalid {
            what: WHAT,
            message: "Payload.logID is not hex".into(),
        })?,
        log_index: raw.payload.log_index,
        integrated_time: raw.payload.integrated_time,
        body: base64(&raw.payload.body, "the Rekor bundle's body")?,
        set: base64(
            &raw.signed_entry_timestamp,
            "the Rekor bundle's SignedEntryTimestamp",
        )?,
    })
}

/// The bytes of lowercase or uppercase hex `text`, if it is hex.
pub(super) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// A bundle's `tlogEntries[]` item, as protobuf's JSON writes it (64-bit
/// integers as strings).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawTlogEntry {
    log_index: Int,
    log_id: LogId,
    integrated_time: Int,
    #[serde(default)]
    inclusion_promise: Option<Promise>,
    canonicalized_body: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogId {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Promise {
    signed_entry_timestamp: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Int {
    Text(String),
    Number(i64),
}

impl Int {
    fn read(&self, what: &'static str) -> Result<i64, Error> {
        match self {
            Int::Number(n) => Ok(*n),
            Int::Text(t) => t.parse().map_err(|_| Error::Invalid {
                what,
                message: "not a decimal integer".into(),
            }),
        }
    }
}

impl RawTlogEntry {
    /// The entry; `None` without an inclusion promise (the SET is the only
    /// proof read offline).
    pub(super) fn read(&self) -> Result<Option<Tlog>, Error> {
        let Some(promise) = &self.inclusion_promise else {
            return Ok(None);
        };
        Ok(Some(Tlog {
            log_id: base64(&self.log_id.key_id, "tlogEntries[0].logId.keyId")?,
            log_index: self.log_index.read("tlogEntries[0].logIndex")?,
            integrated_time: self.integrated_time.read("tlogEntries[0].integratedTime")?,
            body: base64(&self.canonicalized_body, "tlogEntries[0].canonicalizedBody")?,
            set: base64(
                &promise.signed_entry_timestamp,
                "tlogEntries[0].inclusionPromise.signedEntryTimestamp",
            )?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_pem_chains_and_refuses_what_is_not_one() {
        let pem = "-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n";
        assert_eq!(
            pem_certificates(&pem.repeat(2), "chain").expect("pem"),
            [vec![1, 2, 3], vec![1, 2, 3]]
        );
        assert!(pem_certificates("", "chain").expect("none").is_empty());
        assert!(pem_certificates(&pem.replace("AQID", "!!"), "chain").is_err());
        assert!(pem_certificates(&pem.repeat(MAX_CERTIFICATE_CHAIN + 1), "chain").is_err());
        let key = pem.replace("CERTIFICATE-----\nAQID", "PUBLIC KEY-----\nAQID");
        assert!(pem_certificates(&key, "chain").is_err());
    }

    #[test]
    fn reads_cosigns_rekor_annotation() {
        let text = r#"{"SignedEntryTimestamp":"AQI=","Payload":{"body":"e30=","integratedTime":5,"logIndex":7,"logID":"0aff"}}"#;
        let tlog = rekor_bundle(text).expect("bundle");
        assert_eq!(tlog.log_id, [0x0a, 0xff]);
        assert_eq!((tlog.log_index, tlog.integrated_time), (7, 5));
        assert_eq!(
            (tlog.body.as_slice(), tlog.set.as_slice()),
            (&b"{}"[..], &[1u8, 2][..])
        );
        assert!(rekor_bundle(&text.replace("0aff", "0ag")).is_err());
        assert!(rekor_bundle(&text.replace("e30=", "!")).is_err());
        assert!(rekor_bundle("{}").is_err());
    }

    proptest! {
        #[test]
        fn any_annotation_is_read_or_refused(text in "\\PC{0,300}", hex in "[0-9a-fA-Fé]{0,9}") {
            let _ = pem_certificates(&text, "chain");
            let _ = pem_certificates(&format!("-----BEGIN CERTIFICATE-----\n{text}\n-----END CERTIFICATE-----"), "chain");
            let _ = rekor_bundle(&text);
            let _ = unhex(&hex);
        }
    }
}
