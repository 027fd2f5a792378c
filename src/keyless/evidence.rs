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
    /// What the signature is over.
    pub signed: Signed<'a>,
    /// The Rekor entry. Required: keyless verification fails without it.
    pub tlog: Option<TlogEntry<'a>>,
}

/// What a keyless signature signs, which also says how Rekor records it.
#[derive(Debug, Clone, Copy)]
pub enum Signed<'a> {
    /// Bytes signed whole (hashed with the certificate key's hash), logged
    /// as a `hashedrekord` of their digest: cosign's simple-signing
    /// payload.
    Bytes(&'a [u8]),
    /// A SHA-256 digest signed as it is, logged as a `hashedrekord` of
    /// that digest: a bundle's message signature over an image manifest.
    Sha256(&'a [u8]),
    /// A DSSE envelope: the signature is over `pae` (its
    /// pre-authentication encoding), and the `dsse` entry records the hash
    /// of `payload`.
    Dsse { pae: &'a [u8], payload: &'a [u8] },
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
