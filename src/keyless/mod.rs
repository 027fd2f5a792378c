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
//! 3. The signature verifies with the leaf's key (P-256 with SHA-256,
//!    P-384 with SHA-384) over what was signed ([`Signed`]): bytes, a
//!    SHA-256 digest as it is (a message signature), or a DSSE envelope's
//!    pre-authentication encoding (PAE).
//! 4. The entry's body records this signature and this certificate, and
//!    binds what was signed: a `hashedrekord` v0.0.1 records the digest of
//!    the signed bytes (sha256, sha384 or sha512) or the signed digest; a
//!    `dsse` v0.0.1 records the SHA-256 of the envelope's payload as its
//!    `payloadHash`, and this signature, with this certificate as its
//!    `verifier`, among its `signatures` (sigstore-go compares the entry's
//!    signature and key; the payload hash is checked too, as Rekor computed
//!    it; the `envelopeHash` is not, since an envelope's JSON is not
//!    canonical). Other kinds (`intoto`) are
//!    refused as `unsupported tlog kind`.
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
//!   first); `signature` is `messageSignature.signature`, signed over
//!   `messageSignature.messageDigest` (for an image, its manifest digest).
//!   A `dsseEnvelope` gives `signatures[0].sig` over the PAE of its
//!   payload (an in-toto statement naming the image).
//!   `tlog` is `tlogEntries[0]`: `logId.keyId`, `logIndex`,
//!   `integratedTime` (decimal strings in JSON), `canonicalizedBody` and
//!   `inclusionPromise.signedEntryTimestamp`, each base64 decoded. A
//!   public-key bundle goes to `signature`'s key-based check instead.
//! - cosign's legacy `.sig` manifest: `chain` is the PEM of the
//!   `dev.sigstore.cosign/certificate` annotation then those of
//!   `dev.sigstore.cosign/chain`, as DER; `signature` is the base64-decoded
//!   `dev.cosignproject.cosign/signature`; it signs the layer's
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

pub use evidence::{Evidence, Signed, TlogEntry};
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
    signed_by(&leaf.public_key()?, evidence.signed, evidence.signature)?;
    rekor::check_body(entry, leaf.der, evidence.signature, evidence.signed)?;
    identity::check(identities, &x509::identity(&leaf))
}

/// Verifies `signature` over what `signed` says was signed, with the
/// certificate's key (DER SubjectPublicKeyInfo).
fn signed_by(key: &[u8], signed: Signed<'_>, signature: &[u8]) -> Result<(), Failure> {
    let hash = ecdsa::default_hash(key)
        .map_err(|e| Failure::Malformed(format!("signing certificate: {e}")))?;
    match signed {
        Signed::Bytes(bytes) => ecdsa::verify(key, hash, bytes, signature),
        Signed::Sha256(digest) => ecdsa::verify_prehash(key, digest, signature),
        Signed::Dsse { pae, .. } => ecdsa::verify(key, hash, pae, signature),
    }
    .map_err(|_| Failure::SignatureInvalid)
}
