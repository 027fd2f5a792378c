//! Cosign signatures of package images, read and verified offline.
//!
//! What a registry holds for one image digest ([`Signatures`]) is read by
//! `oci::signatures` for the registry, every byte checked against its
//! digest; this module parses it and says, for a set of authorities (a
//! public key, or a trusted root and identities for keyless signatures,
//! checked by `crate::keyless`), whether one signature vouches for that
//! digest ([`verify_legacy`], [`verify_bundle`]). Nothing here reaches the
//! network: keys and trusted roots come from the Composition's input.
//!
//! - `key`: an ECDSA P-256 public key from PEM, as `cosign
//!   generate-key-pair` writes it, and its cosign key hint.
//! - `payload`: cosign's simple-signing payload (the legacy
//!   `sha256-<hex>.sig` tag's layers).
//! - `bundle`: the Sigstore bundle (v0.1 to v0.3) that cosign v3 attaches
//!   as an OCI 1.1 referrer: a DSSE envelope with an in-toto statement, or
//!   a message signature.
//! - `sigstore`: a keyless signature's certificates and Rekor entry, from
//!   a bundle or cosign's legacy annotations, for `crate::keyless`.
//! - `trust`: what an authority trusts: a key, or a trusted root and
//!   identities ([`Trust`]).
//! - `material`: what a registry found for one digest.
//! - `verify`: one signature against the authorities, as a [`Finding`].
//! - `error`: why material could not be read.

mod bundle;
mod error;
#[cfg(test)]
pub(crate) mod fixtures;
mod key;
mod material;
mod payload;
mod sigstore;
mod trust;
mod verify;

pub use self::bundle::{
    BUNDLE_MEDIA_TYPE_PREFIX, Bundle, BundleContent, Dsse, IN_TOTO, MessageSignature,
};
pub use self::error::Error;
pub use self::key::PublicKey;
pub use self::material::{LegacySignature, Signatures};
pub use self::payload::{SIGNATURE_ANNOTATION, SIMPLE_SIGNING, SimpleSigning};
pub use self::sigstore::{CERTIFICATE_ANNOTATION, CHAIN_ANNOTATION, REKOR_ANNOTATION, Tlog};
pub use self::trust::{Keyless, Trust, field};
pub use self::verify::{Finding, Signer, verify_bundle, verify_legacy};
