//! Offline Sigstore *keyless* verification: a signature made with a
//! short-lived Fulcio certificate, logged in Rekor, checked against a
//! trusted root (`trusted_root.json`) with no network and no clock.
//!
//! The rules, as cosign (`pkg/cosign/verify.go`) and sigstore-go
//! (`pkg/verify`) apply them:
//! 1. The Rekor entry's signed entry timestamp (SET) verifies with the key
//!    of a transparency log the root lists (named by the root's
//!    `logId.keyId` or the SHA-256 of the key's DER), over the canonical
//!    JSON of the entry's body, integrated time, log id and index; the
//!    key's `validFor` contains the integrated time. From here on the
//!    integrated time is *the* time: the wall clock is never read, so a
//!    certificate that lived ten minutes years ago still verifies.
//! 2. The leaf certificate is valid at that time, allows code signing
//!    (extended key usage), and chains, through the signature's own
//!    intermediates and the authority's chain, to the root of a
//!    certificate authority whose `validFor` contains that time; every
//!    certificate on the path is valid then, intermediates are CAs, and
//!    every signature (ECDSA P-256 or P-384, SHA-256 or SHA-384) verifies.
//! 3. The signature verifies over the signed bytes with the leaf's key
//!    (P-256 with SHA-256, P-384 with SHA-384).
//! 4. The entry's body is a `hashedrekord` v0.0.1 recording this
//!    signature, this certificate (PEM) and the digest of the signed bytes
//!    (sha256, sha384 or sha512). Other kinds (`dsse`, `intoto`) are
//!    refused as `unsupported tlog kind`: checking them needs the whole
//!    DSSE envelope, which [`Evidence`] does not carry.
//! 5. The certificate's issuer (Fulcio extension 1.3.6.1.4.1.57264.1.8, or
//!    the legacy 1.3.6.1.4.1.57264.1.1) equals an [`Identity`]'s issuer and
//!    one of its email or URI SANs matches that identity's [`Subject`]
//!    (exactly, or by an **unanchored** regex, as cosign's
//!    `--certificate-identity-regexp`).
//!
//! Where [`Evidence`] comes from (for `signature`):
//! - A Sigstore bundle (v0.1 to v0.3): `chain` is
//!   `verificationMaterial.certificate.rawBytes` (v0.3) or
//!   `x509CertificateChain.certificates[].rawBytes` (v0.1, v0.2; leaf
//!   first); `signature` is `messageSignature.signature`, and `signed` the
//!   signed bytes (for an image, the simple-signing payload). A
//!   `dsseEnvelope` gives `signatures[0].sig` and the PAE of its payload,
//!   but its Rekor entry is of the `dsse`/`intoto` kind, refused today.
//!   `tlog` is `tlogEntries[0]`: `logId.keyId`, `logIndex`,
//!   `integratedTime` (decimal strings in JSON), `canonicalizedBody` and
//!   `inclusionPromise.signedEntryTimestamp`, each base64 decoded. A
//!   public-key bundle goes to `signature`'s key-based check instead.
//! - cosign's legacy `.sig` manifest: `chain` is the PEM of the
//!   `dev.sigstore.cosign/certificate` annotation then those of
//!   `dev.sigstore.cosign/chain`, as DER; `signature` is the base64-decoded
//!   `dev.cosignproject.cosign/signature`; `signed` is the layer's
//!   simple-signing payload; `tlog` comes from `dev.sigstore.cosign/bundle`
//!   (`{"SignedEntryTimestamp", "Payload": {"body", "integratedTime",
//!   "logIndex", "logID"}}`): `logID` is **hex**, `body` and the SET base64.
//!
//! Not checked: SCTs (the certificate's CT log proofs), as cosign's
//! `--insecure-ignore-sct`; a root listing CT logs
//! ([`TrustedRoot::ctlogs`]) is a follow-up. Nor Rekor inclusion proofs
//! (the SET is the offline proof, as cosign's bundle annotation), RFC 3161
//! timestamps, revocation, name constraints, path length constraints or
//! unknown critical extensions.

mod ecdsa;
mod evidence;
mod failure;
mod identity;
mod rekor;
mod root;
mod x509;

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;

pub use evidence::{Evidence, TlogEntry};
pub use failure::Failure;
pub use identity::{Identity, Subject};
pub use root::TrustedRoot;

/// Verifies a keyless signature: the rules of this module's documentation,
/// in order, the first failure returned.
pub fn verify(
    root: &TrustedRoot,
    identities: &[Identity],
    evidence: &Evidence<'_>,
) -> Result<(), Failure> {
    let entry = evidence.tlog.as_ref().ok_or(Failure::NoTlogEntry)?;
    rekor::verify_set(root, entry)?;
    let leaf = x509::verify_chain(evidence.chain, root.authorities(), entry.integrated_time)?;
    let key = leaf.public_key()?;
    let hash = ecdsa::default_hash(&key)
        .map_err(|e| Failure::Malformed(format!("signing certificate: {e}")))?;
    ecdsa::verify(&key, hash, evidence.signed, evidence.signature)
        .map_err(|_| Failure::SignatureInvalid)?;
    rekor::check_body(entry, leaf.der, evidence.signature, evidence.signed)?;
    identity::check(identities, &x509::identity(&leaf))
}
