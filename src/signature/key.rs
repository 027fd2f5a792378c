//! An ECDSA P-256 public key, as `cosign generate-key-pair` writes it
//! (`-----BEGIN PUBLIC KEY-----`, a SubjectPublicKeyInfo), and what cosign
//! calls its hint: the base64 sha256 of that DER, which a bundle signed
//! with the key names in `verificationMaterial.publicKey.hint`.

use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{DerSignature, VerifyingKey};
use p256::pkcs8::{DecodePublicKey, EncodePublicKey};
use sha2::{Digest, Sha256};

use super::error::Error;
use crate::spec::limits::MAX_PUBLIC_KEY_PEM_LEN;

/// A verifying key read from PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    hint: String,
    /// The key re-encoded (`-----BEGIN PUBLIC KEY-----`, LF line ends).
    pem: String,
}

impl PublicKey {
    /// Reads a PEM public key; only ECDSA P-256 (cosign's) is accepted.
    pub fn from_pem(pem: &str) -> Result<Self, Error> {
        if pem.len() > MAX_PUBLIC_KEY_PEM_LEN {
            return Err(Error::TooLarge {
                what: "the public key",
                len: pem.len(),
                max: MAX_PUBLIC_KEY_PEM_LEN,
            });
        }
        let key = VerifyingKey::from_public_key_pem(pem.trim())
            .map_err(|source| Error::Key { source })?;
        let der = key
            .to_public_key_der()
            .map_err(|source| Error::Key { source })?;
        let hint = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(der.as_bytes()));
        let pem = der
            .to_pem("PUBLIC KEY", p256::pkcs8::LineEnding::LF)
            .map_err(|source| Error::Key {
                source: source.into(),
            })?;
        Ok(Self { key, hint, pem })
    }

    /// cosign's hint for this key.
    pub fn hint(&self) -> &str {
        &self.hint
    }

    /// The key as PEM, re-encoded from what was read (so the same for any
    /// spelling of one key): what Crossplane reads from a Secret.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// Whether `signature` (ASN.1 DER) signs `message` (sha256).
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        DerSignature::try_from(signature).is_ok_and(|s| self.key.verify(message, &s).is_ok())
    }

    /// Whether `signature` (ASN.1 DER) signs the message whose sha256 is
    /// `digest`.
    pub fn verifies_prehash(&self, digest: &[u8], signature: &[u8]) -> bool {
        digest.len() == 32
            && DerSignature::try_from(signature)
                .is_ok_and(|s| self.key.verify_prehash(digest, &s).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::fixtures::PEM;
    use proptest::prelude::*;

    #[test]
    fn reads_cosign_keys_and_their_hint() {
        let key = PublicKey::from_pem(PEM).expect("key");
        assert_eq!(key.hint(), "RhRMHAzvD4LoyUdqfVwvlakXiQCcnG5wbxe7ekkmLvs=");
        assert_eq!(key.pem().trim(), PEM.trim());
        assert_eq!(PublicKey::from_pem(key.pem()).ok(), Some(key.clone()));
        assert!(!key.verifies(b"x", b"not der"));
        assert!(!key.verifies_prehash(b"short", b"not der"));
    }

    #[test]
    fn refuses_what_is_not_a_p256_key() {
        for bad in [
            "",
            "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
            "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n",
            // An Ed25519 key.
            "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n",
        ] {
            assert!(PublicKey::from_pem(bad).is_err(), "{bad:?}");
        }
        let long = "x".repeat(MAX_PUBLIC_KEY_PEM_LEN + 1);
        assert!(matches!(
            PublicKey::from_pem(&long),
            Err(Error::TooLarge { .. })
        ));
    }

    proptest! {
        #[test]
        fn any_text_is_read_or_refused(text in ".{0,400}") {
            let _ = PublicKey::from_pem(&text);
            let _ = PublicKey::from_pem(&format!("-----BEGIN PUBLIC KEY-----\n{text}\n-----END PUBLIC KEY-----\n"));
        }

        #[test]
        fn any_signature_bytes_are_judged(sig in proptest::collection::vec(any::<u8>(), 0..100)) {
            let key = PublicKey::from_pem(PEM).expect("key");
            prop_assert!(!key.verifies(b"message", &sig));
            prop_assert!(!key.verifies_prehash(&[0u8; 32], &sig));
        }
    }
}
