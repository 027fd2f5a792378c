//! The Sigstore trusted root (`trusted_root.json`, media type
//! `application/vnd.dev.sigstore.trustedroot+json;version=0.1`): the
//! transparency logs and certificate authorities keyless signatures are
//! checked against, each with the time it may be trusted for.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use sha2::Digest;
use x509_cert::der::{DateTime, Decode};

use crate::spec::limits::{
    MAX_TRUSTED_ROOT_AUTHORITIES, MAX_TRUSTED_ROOT_CHAIN, MAX_TRUSTED_ROOT_LEN,
    MAX_TRUSTED_ROOT_LOGS,
};

/// The one media type read.
pub const MEDIA_TYPE: &str = "application/vnd.dev.sigstore.trustedroot+json;version=0.1";

/// Why a trusted root was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("trusted root is {0} bytes, over the {MAX_TRUSTED_ROOT_LEN} allowed")]
    TooLarge(usize),
    #[error("trusted root is not valid JSON of its schema")]
    Json(#[source] serde_json::Error),
    #[error("trusted root media type {0:?} is not {MEDIA_TYPE:?}")]
    MediaType(String),
    #[error("trusted root lists {count} {what}, over the {max} allowed")]
    TooMany {
        what: &'static str,
        count: usize,
        max: usize,
    },
    #[error("trusted root {what} #{index}: {why}")]
    Entry {
        what: &'static str,
        index: usize,
        why: String,
    },
}

/// A parsed trusted root. Only what keyless verification reads is kept:
/// the transparency logs and the certificate authorities. CT logs are
/// counted (SCTs are not checked: see the module's documentation) and
/// timestamp authorities are not read.
#[derive(Debug, Clone)]
pub struct TrustedRoot {
    tlogs: Vec<Tlog>,
    authorities: Vec<Authority>,
    ctlogs: usize,
}

/// A time window in Unix seconds; an open end is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Window {
    pub start: Option<i64>,
    pub end: Option<i64>,
}

impl Window {
    pub(super) fn contains(&self, t: i64) -> bool {
        self.start.is_none_or(|s| s <= t) && self.end.is_none_or(|e| t <= e)
    }
}

/// A transparency log: its key (DER SubjectPublicKeyInfo) and the ids it
/// is known by.
#[derive(Debug, Clone)]
pub(super) struct Tlog {
    /// `logId.keyId` as written, when the root gives one.
    pub log_id: Option<Vec<u8>>,
    /// SHA-256 of the key's DER: Rekor's log id.
    pub key_id: [u8; 32],
    pub key: Vec<u8>,
    pub valid: Window,
}

/// A certificate authority: its chain (DER, intermediate first, root
/// last) and when it may issue.
#[derive(Debug, Clone)]
pub(super) struct Authority {
    pub chain: Vec<Vec<u8>>,
    pub valid: Window,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRoot {
    media_type: String,
    #[serde(default)]
    tlogs: Vec<RawLog>,
    #[serde(default)]
    certificate_authorities: Vec<RawAuthority>,
    #[serde(default)]
    ctlogs: Vec<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLog {
    public_key: RawKey,
    #[serde(default)]
    log_id: Option<RawLogId>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKey {
    raw_bytes: String,
    #[serde(default)]
    valid_for: Option<RawWindow>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogId {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAuthority {
    cert_chain: RawChain,
    #[serde(default)]
    valid_for: Option<RawWindow>,
}

#[derive(Deserialize)]
struct RawChain {
    certificates: Vec<RawCertificate>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCertificate {
    raw_bytes: String,
}

#[derive(Deserialize)]
struct RawWindow {
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
}

impl TrustedRoot {
    /// Parses a trusted root of at most
    /// [`MAX_TRUSTED_ROOT_LEN`](crate::spec::limits::MAX_TRUSTED_ROOT_LEN)
    /// bytes, with bounded numbers of logs, authorities and certificates.
    /// Every key and certificate must decode; unknown fields are ignored.
    pub fn parse(json: &[u8]) -> Result<TrustedRoot, Error> {
        if json.len() > MAX_TRUSTED_ROOT_LEN {
            return Err(Error::TooLarge(json.len()));
        }
        let raw: RawRoot = serde_json::from_slice(json).map_err(Error::Json)?;
        if raw.media_type != MEDIA_TYPE {
            return Err(Error::MediaType(raw.media_type));
        }
        bound("transparency logs", raw.tlogs.len(), MAX_TRUSTED_ROOT_LOGS)?;
        bound("CT logs", raw.ctlogs.len(), MAX_TRUSTED_ROOT_LOGS)?;
        bound(
            "certificate authorities",
            raw.certificate_authorities.len(),
            MAX_TRUSTED_ROOT_AUTHORITIES,
        )?;
        let tlogs = raw
            .tlogs
            .iter()
            .enumerate()
            .map(|(index, log)| tlog(log).map_err(|why| entry("transparency log", index, why)))
            .collect::<Result<_, _>>()?;
        let authorities = raw
            .certificate_authorities
            .iter()
            .enumerate()
            .map(|(index, ca)| {
                authority(ca).map_err(|why| entry("certificate authority", index, why))
            })
            .collect::<Result<_, _>>()?;
        Ok(TrustedRoot {
            tlogs,
            authorities,
            ctlogs: raw.ctlogs.len(),
        })
    }

    /// The transparency log `log_id` names: by the root's `logId.keyId`, or
    /// by the SHA-256 of the log's key.
    pub(super) fn tlog(&self, log_id: &[u8]) -> Option<&Tlog> {
        self.tlogs
            .iter()
            .find(|log| log.log_id.as_deref() == Some(log_id) || log.key_id[..] == *log_id)
    }

    pub(super) fn authorities(&self) -> &[Authority] {
        &self.authorities
    }

    /// The CT logs the root lists, whose SCTs are not checked yet.
    pub fn ctlogs(&self) -> usize {
        self.ctlogs
    }
}

fn bound(what: &'static str, count: usize, max: usize) -> Result<(), Error> {
    if count > max {
        return Err(Error::TooMany { what, count, max });
    }
    Ok(())
}

fn entry(what: &'static str, index: usize, why: String) -> Error {
    Error::Entry { what, index, why }
}

fn tlog(raw: &RawLog) -> Result<Tlog, String> {
    let key = STANDARD
        .decode(&raw.public_key.raw_bytes)
        .map_err(|_| "publicKey.rawBytes is not base64".to_owned())?;
    x509_cert::spki::SubjectPublicKeyInfoRef::from_der(&key)
        .map_err(|_| "publicKey.rawBytes is not a DER public key".to_owned())?;
    let log_id = match &raw.log_id {
        Some(id) => Some(
            STANDARD
                .decode(&id.key_id)
                .map_err(|_| "logId.keyId is not base64".to_owned())?,
        ),
        None => None,
    };
    Ok(Tlog {
        log_id,
        key_id: sha2::Sha256::digest(&key).into(),
        key,
        valid: window(raw.public_key.valid_for.as_ref())?,
    })
}

fn authority(raw: &RawAuthority) -> Result<Authority, String> {
    let certificates = &raw.cert_chain.certificates;
    if certificates.is_empty() || certificates.len() > MAX_TRUSTED_ROOT_CHAIN {
        return Err(format!(
            "certChain has {} certificates, not 1 to {MAX_TRUSTED_ROOT_CHAIN}",
            certificates.len()
        ));
    }
    let mut chain = Vec::with_capacity(certificates.len());
    for (i, certificate) in certificates.iter().enumerate() {
        let der = STANDARD
            .decode(&certificate.raw_bytes)
            .map_err(|_| format!("certificate #{i} is not base64"))?;
        x509_cert::Certificate::from_der(&der)
            .map_err(|e| format!("certificate #{i} is not a DER X.509 certificate: {e}"))?;
        chain.push(der);
    }
    Ok(Authority {
        chain,
        valid: window(raw.valid_for.as_ref())?,
    })
}

fn window(raw: Option<&RawWindow>) -> Result<Window, String> {
    let Some(raw) = raw else {
        return Ok(Window::default());
    };
    let start = raw.start.as_deref().map(|s| rfc3339(s, true)).transpose()?;
    let end = raw.end.as_deref().map(|s| rfc3339(s, false)).transpose()?;
    Ok(Window { start, end })
}

fn digits(s: &[u8], at: usize, n: usize) -> Option<u32> {
    let field = s.get(at..at + n)?;
    field.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

/// Unix seconds of an RFC 3339 time as protobuf's JSON writes it
/// (`2021-01-12T11:53:27.000Z`, or with a `±hh:mm` offset). A fraction
/// rounds a window's start up and its end down, so the window never
/// grows.
pub(super) fn rfc3339(text: &str, round_up: bool) -> Result<i64, String> {
    let bad = || format!("{text:?} is not an RFC 3339 time");
    let s = text.as_bytes();
    let field = |at, n| digits(s, at, n).ok_or_else(bad);
    let (year, month, day) = (field(0, 4)?, field(5, 2)?, field(8, 2)?);
    let (hour, minute, second) = (field(11, 2)?, field(14, 2)?, field(17, 2)?);
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(at, c)| s.get(at) != Some(&c))
        || !matches!(s.get(10), Some(b'T' | b't'))
    {
        return Err(bad());
    }
    let mut rest = &s[19..];
    let mut fraction = false;
    if let Some(digits) = rest.strip_prefix(b".") {
        let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 {
            return Err(bad());
        }
        fraction = digits[..n].iter().any(|&b| b != b'0');
        rest = &digits[n..];
    }
    let offset = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hm = [*h1, *h2, *m1, *m2];
            let (h, m) = (
                digits(&hm, 0, 2).ok_or_else(bad)?,
                digits(&hm, 2, 2).ok_or_else(bad)?,
            );
            let secs = i64::from(h) * 3600 + i64::from(m) * 60;
            if *sign == b'+' { secs } else { -secs }
        }
        _ => return Err(bad()),
    };
    let date = DateTime::new(
        u16::try_from(year).map_err(|_| bad())?,
        u8::try_from(month).map_err(|_| bad())?,
        u8::try_from(day).map_err(|_| bad())?,
        u8::try_from(hour).map_err(|_| bad())?,
        u8::try_from(minute).map_err(|_| bad())?,
        u8::try_from(second).map_err(|_| bad())?,
    )
    .map_err(|_| bad())?;
    let secs = i64::try_from(date.unix_duration().as_secs()).map_err(|_| bad())? - offset;
    Ok(if fraction && round_up { secs + 1 } else { secs })
}
