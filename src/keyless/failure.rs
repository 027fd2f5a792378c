//! Why keyless verification refused a signature: one reason a status line
//! can show.

/// Why [`verify`](super::verify) refused: each variant is a short reason
/// for a status line, with what was found where it helps the reader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Keyless verification needs the Rekor entry: its signed integrated
    /// time is the only clock the certificate is checked against.
    #[error("no transparency log entry")]
    NoTlogEntry,
    /// The entry's log id names no transparency log of the trusted root.
    #[error("transparency log entry from an unknown log (log id {log_id})")]
    UnknownLog { log_id: String },
    /// The signed entry timestamp does not verify with the log's key, or
    /// the log's key was not valid at the integrated time.
    #[error("invalid signed entry timestamp: {0}")]
    InvalidSet(String),
    /// No path from the signing certificate to a certificate authority of
    /// the trusted root valid at the integrated time.
    #[error("certificate not trusted: {0}")]
    CertificateNotTrusted(String),
    /// The integrated time is outside the signing certificate's validity.
    #[error(
        "certificate expired at signing (logged at {integrated_time}, certificate valid from {not_before} to {not_after})"
    )]
    CertificateExpiredAtSigning {
        integrated_time: i64,
        not_before: i64,
        not_after: i64,
    },
    /// The signature does not verify over the signed bytes with the
    /// certificate's key.
    #[error("signature invalid")]
    SignatureInvalid,
    /// The Rekor entry records another signature, certificate or digest.
    #[error("transparency log entry does not match: {0}")]
    BodyMismatch(String),
    /// The certificate names an issuer and subject no identity allows.
    #[error("no matching identity (issuer {found_issuer}, subject {found_subject})")]
    NoMatchingIdentity {
        found_issuer: String,
        found_subject: String,
    },
    /// Input that cannot be read (a certificate that is not DER, a body
    /// that is not JSON, a kind of entry or key not supported).
    #[error("malformed: {0}")]
    Malformed(String),
}
