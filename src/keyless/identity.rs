//! Who may have signed: the OIDC issuer and subject a Fulcio certificate
//! records, matched against the identities policy allows.

use super::failure::Failure;

/// An identity allowed to sign: both its issuer and its subject must match.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The OIDC issuer, compared exactly (cosign's `--certificate-oidc-issuer`).
    pub issuer: String,
    pub subject: Subject,
}

/// How a certificate's subject (an email or URI SAN) is matched.
#[derive(Debug, Clone)]
pub enum Subject {
    /// Exactly this string (cosign's `--certificate-identity`).
    Exact(String),
    /// A regular expression, **unanchored** as cosign's
    /// `--certificate-identity-regexp` (Go's `regexp.MatchString` finds a
    /// match anywhere): `alice@example\.com` also matches
    /// `malice@example.com.evil`. Write `^…$` to match the whole subject.
    /// RE2-like syntax (`regex-lite`), as Go's regexp.
    Regex(regex_lite::Regex),
}

impl Subject {
    fn matches(&self, subject: &str) -> bool {
        match self {
            Subject::Exact(want) => want == subject,
            Subject::Regex(re) => re.is_match(subject),
        }
    }
}

/// The identity a certificate records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Found {
    /// The Fulcio issuer extension, when the certificate has one.
    pub issuer: Option<String>,
    /// Every email and URI subject alternative name, in order.
    pub subjects: Vec<String>,
}

/// Passes when one identity matches the issuer exactly and its subject
/// matches one of the certificate's subjects. No identity passes nothing.
pub(super) fn check(identities: &[Identity], found: &Found) -> Result<(), Failure> {
    let matched = found.issuer.as_deref().is_some_and(|issuer| {
        identities.iter().any(|identity| {
            identity.issuer == issuer && found.subjects.iter().any(|s| identity.subject.matches(s))
        })
    });
    if matched {
        return Ok(());
    }
    Err(Failure::NoMatchingIdentity {
        found_issuer: found.issuer.clone().unwrap_or_else(|| "none".to_owned()),
        found_subject: if found.subjects.is_empty() {
            "none".to_owned()
        } else {
            // A status line: the first few (Fulcio writes one).
            found
                .subjects
                .iter()
                .take(4)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        },
    })
}
