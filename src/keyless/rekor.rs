//! The Rekor entry: its signed entry timestamp (SET), which makes the
//! integrated time trustworthy, and its body, which must record this very
//! signature, certificate and digest.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use sha2::Digest;

use super::ecdsa;
use super::evidence::{Signed, TlogEntry};
use super::failure::Failure;
use super::root::TrustedRoot;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What Rekor signs for a SET: canonical JSON (RFC 8785) of the entry's
/// body, time, log id (hex) and index; keys sorted, no spaces. Base64 and
/// hex need no escaping.
pub(super) fn set_payload(entry: &TlogEntry<'_>) -> String {
    format!(
        r#"{{"body":"{}","integratedTime":{},"logID":"{}","logIndex":{}}}"#,
        STANDARD.encode(entry.canonicalized_body),
        entry.integrated_time,
        hex(entry.log_id),
        entry.log_index,
    )
}

/// Verifies the SET with the key of the log the entry names, a key the
/// trusted root holds valid at the integrated time.
pub(super) fn verify_set(root: &TrustedRoot, entry: &TlogEntry<'_>) -> Result<(), Failure> {
    let log = root.tlog(entry.log_id).ok_or_else(|| Failure::UnknownLog {
        log_id: hex(entry.log_id),
    })?;
    if !log.valid.contains(entry.integrated_time) {
        return Err(Failure::InvalidSet(format!(
            "the log's key was not valid at {}",
            entry.integrated_time
        )));
    }
    let hash =
        ecdsa::default_hash(&log.key).map_err(|e| Failure::Malformed(format!("log key: {e}")))?;
    ecdsa::verify(
        &log.key,
        hash,
        set_payload(entry).as_bytes(),
        entry.signed_entry_timestamp,
    )
    .map_err(|e| match e {
        ecdsa::Error::Key(_) => Failure::Malformed(format!("log key: {e}")),
        ecdsa::Error::Signature => {
            Failure::InvalidSet("signature does not verify with the log's key".to_owned())
        }
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    api_version: String,
    kind: String,
    spec: serde_json::Value,
}

#[derive(Deserialize)]
struct HashedRekord {
    signature: RekordSignature,
    data: RekordData,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RekordSignature {
    content: String,
    public_key: Content,
}

#[derive(Deserialize)]
struct Content {
    content: String,
}

#[derive(Deserialize)]
struct RekordData {
    hash: RekordHash,
}

#[derive(Deserialize)]
struct RekordHash {
    algorithm: String,
    value: String,
}

/// A `dsse` v0.0.1 entry: the payload's hash and each signature with its
/// verifier (a base64 PEM certificate or key).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DsseRekord {
    payload_hash: RekordHash,
    signatures: Vec<DsseSignature>,
}

#[derive(Deserialize)]
struct DsseSignature {
    signature: String,
    verifier: String,
}

fn malformed(why: &str) -> Failure {
    Failure::Malformed(format!("transparency log body: {why}"))
}

fn mismatch(why: &str) -> Failure {
    Failure::BodyMismatch(why.to_owned())
}

/// Checks that the entry's body records `signature`, the certificate
/// `leaf` (DER) and what was `signed`: a `hashedrekord` for bytes or a
/// digest, a `dsse` for an envelope (both v0.0.1).
pub(super) fn check_body(
    entry: &TlogEntry<'_>,
    leaf: &[u8],
    signature: &[u8],
    signed: Signed<'_>,
) -> Result<(), Failure> {
    let body: Body = serde_json::from_slice(entry.canonicalized_body)
        .map_err(|_| malformed("not JSON of a Rekor entry"))?;
    match (body.kind.as_str(), signed) {
        ("hashedrekord" | "dsse", _) if body.api_version != "0.0.1" => Err(malformed(&format!(
            "unsupported {} version {:?}",
            body.kind, body.api_version
        ))),
        ("hashedrekord", Signed::Dsse { .. }) => {
            Err(mismatch("it records a hashedrekord, not the DSSE envelope"))
        }
        ("hashedrekord", signed) => hashedrekord(body.spec, leaf, signature, signed),
        ("dsse", Signed::Dsse { payload, .. }) => dsse(body.spec, leaf, signature, payload),
        ("dsse", _) => Err(mismatch("it records a DSSE envelope, not this signature")),
        (kind, _) => Err(malformed(&format!("unsupported tlog kind {kind:?}"))),
    }
}

/// Whether the base64 PEM `recorded` is the certificate `leaf` (DER).
fn records_certificate(recorded: &str, leaf: &[u8]) -> Result<(), Failure> {
    let pem = STANDARD
        .decode(recorded)
        .map_err(|_| malformed("public key is not base64"))?;
    match x509_cert::der::pem::decode_vec(&pem) {
        Ok(("CERTIFICATE", der)) if der == leaf => Ok(()),
        Ok(("CERTIFICATE", _)) => Err(mismatch("it records another certificate")),
        _ => Err(mismatch("it records a key, not the signing certificate")),
    }
}

fn hashedrekord(
    spec: serde_json::Value,
    leaf: &[u8],
    signature: &[u8],
    signed: Signed<'_>,
) -> Result<(), Failure> {
    let spec: HashedRekord =
        serde_json::from_value(spec).map_err(|_| malformed("not a hashedrekord"))?;
    let logged = STANDARD
        .decode(&spec.signature.content)
        .map_err(|_| malformed("signature is not base64"))?;
    if logged != signature {
        return Err(mismatch("it records another signature"));
    }
    records_certificate(&spec.signature.public_key.content, leaf)?;
    let digest = match (spec.data.hash.algorithm.as_str(), signed) {
        ("sha256", Signed::Sha256(digest)) => digest.to_vec(),
        (other, Signed::Sha256(_)) => {
            return Err(mismatch(&format!(
                "it records a {other} digest, the signature is over a sha256"
            )));
        }
        ("sha256", Signed::Bytes(bytes)) => sha2::Sha256::digest(bytes).to_vec(),
        ("sha384", Signed::Bytes(bytes)) => sha2::Sha384::digest(bytes).to_vec(),
        ("sha512", Signed::Bytes(bytes)) => sha2::Sha512::digest(bytes).to_vec(),
        (other, _) => return Err(malformed(&format!("unsupported hash algorithm {other:?}"))),
    };
    if !spec.data.hash.value.eq_ignore_ascii_case(&hex(&digest)) {
        return Err(mismatch("it records the digest of other content"));
    }
    Ok(())
}

fn dsse(
    spec: serde_json::Value,
    leaf: &[u8],
    signature: &[u8],
    payload: &[u8],
) -> Result<(), Failure> {
    let spec: DsseRekord =
        serde_json::from_value(spec).map_err(|_| malformed("not a dsse entry"))?;
    if spec.payload_hash.algorithm != "sha256" {
        return Err(malformed(&format!(
            "unsupported payload hash algorithm {:?}",
            spec.payload_hash.algorithm
        )));
    }
    if !spec
        .payload_hash
        .value
        .eq_ignore_ascii_case(&hex(&sha2::Sha256::digest(payload)))
    {
        return Err(mismatch("it records the hash of another payload"));
    }
    let encoded = STANDARD.encode(signature);
    let ours = spec
        .signatures
        .iter()
        .find(|s| s.signature == encoded)
        .ok_or_else(|| mismatch("it records another signature"))?;
    records_certificate(&ours.verifier, leaf)
}
