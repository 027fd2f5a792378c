//! What a signature brings to be verified: plain bytes, so the caller can
//! take them from a Sigstore bundle or from cosign's legacy annotations.

/// One signature and what vouches for it.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// DER certificates, the signing (leaf) certificate first, then any
    /// intermediates the signature carries. Intermediates here are only
    /// candidates: the path must still end at a trusted root's authority.
    pub chain: &'a [Vec<u8>],
    /// The ECDSA signature (ASN.1 DER) over `signed`.
    pub signature: &'a [u8],
    /// The bytes signed: the simple-signing payload, or a DSSE envelope's
    /// pre-authentication encoding.
    pub signed: &'a [u8],
    /// The Rekor entry. Required: keyless verification fails without it.
    pub tlog: Option<TlogEntry<'a>>,
}

/// A Rekor transparency log entry, as a bundle's `tlogEntries[]` or
/// cosign's `dev.sigstore.cosign/bundle` annotation carries it.
#[derive(Debug, Clone, Copy)]
pub struct TlogEntry<'a> {
    /// The log's key id (decoded bytes, not hex or base64).
    pub log_id: &'a [u8],
    pub log_index: i64,
    /// Seconds since the Unix epoch, as the log signed it.
    pub integrated_time: i64,
    /// The entry body exactly as logged (decoded from base64).
    pub canonicalized_body: &'a [u8],
    /// The signed entry timestamp: the log key's ECDSA signature (DER).
    pub signed_entry_timestamp: &'a [u8],
}
