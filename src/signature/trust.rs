//! What an authority trusts: a public key, or (keyless) a Sigstore trusted
//! root and the identities whose Fulcio certificates it accepts.

use sha2::{Digest, Sha256};

use super::key::PublicKey;
use crate::keyless::{Identity, Subject, TrustedRoot};

/// One authority's trust.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Signatures verify with this key.
    Key(PublicKey),
    /// Signatures carry a certificate chaining to the root, logged in one
    /// of its transparency logs, for one of the identities.
    Keyless(Keyless),
}

/// A trusted root and the identities allowed to sign under it.
#[derive(Clone, Debug)]
pub struct Keyless {
    pub root: TrustedRoot,
    /// 1 to [`MAX_KEYLESS_IDENTITIES`](crate::spec::limits::MAX_KEYLESS_IDENTITIES).
    pub identities: Vec<Identity>,
    /// The sha256 of the root's JSON: what makes two equal.
    root_sha256: [u8; 32],
}

/// Adds `bytes` to `hash`, length first, so that fields cannot run into
/// each other.
pub fn field(hash: &mut Sha256, bytes: &[u8]) {
    hash.update((bytes.len() as u64).to_be_bytes());
    hash.update(bytes);
}

impl Trust {
    /// Adds what this trust accepts to `hash`: equal for equal trusts (a
    /// key by its hint, the SHA-256 of its DER; a trusted root by the
    /// SHA-256 of its JSON, then each identity).
    pub fn fingerprint(&self, hash: &mut Sha256) {
        match self {
            Trust::Key(key) => {
                field(hash, b"key");
                field(hash, key.hint().as_bytes());
            }
            Trust::Keyless(keyless) => {
                field(hash, b"keyless");
                field(hash, &keyless.root_sha256);
                for identity in &keyless.identities {
                    field(hash, identity.issuer.as_bytes());
                    match &identity.subject {
                        Subject::Exact(subject) => {
                            field(hash, b"exact");
                            field(hash, subject.as_bytes());
                        }
                        Subject::Regex(regex) => {
                            field(hash, b"regex");
                            field(hash, regex.as_str().as_bytes());
                        }
                    }
                }
            }
        }
    }
}

impl Keyless {
    /// `root` read from `json`, with `identities`.
    pub fn new(root: TrustedRoot, json: &[u8], identities: Vec<Identity>) -> Self {
        Self {
            root,
            identities,
            root_sha256: Sha256::digest(json).into(),
        }
    }
}

impl PartialEq for Keyless {
    fn eq(&self, other: &Self) -> bool {
        let same = |a: &Identity, b: &Identity| {
            a.issuer == b.issuer
                && match (&a.subject, &b.subject) {
                    (Subject::Exact(x), Subject::Exact(y)) => x == y,
                    (Subject::Regex(x), Subject::Regex(y)) => x.as_str() == y.as_str(),
                    _ => false,
                }
        };
        self.root_sha256 == other.root_sha256
            && self.identities.len() == other.identities.len()
            && self
                .identities
                .iter()
                .zip(&other.identities)
                .all(|(a, b)| same(a, b))
    }
}

impl Eq for Keyless {}
