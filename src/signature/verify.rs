//! One signature against the keys of the authorities, for one image
//! digest: which authority's key made it, and whether it vouches for that
//! digest (the simple-signing payload's `docker-manifest-digest`, the
//! in-toto statement's subject, the message signature's digest).
//!
//! The signature is verified before anything it signs is believed; the
//! digest it names is compared only once it is.

use super::bundle::{Bundle, BundleContent, signature};
use super::key::PublicKey;
use super::material::LegacySignature;
use super::payload::SimpleSigning;

/// An authority's key, by the authority's name.
#[derive(Clone, Copy, Debug)]
pub struct Signer<'a> {
    pub authority: &'a str,
    pub key: &'a PublicKey,
}

/// What one signature says of one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// The authority's key made it, for this image.
    Verified { authority: String },
    /// The authority's key made it, for another image (`digest`).
    OtherDigest { authority: String, digest: String },
    /// No key given verifies it.
    Invalid,
    /// A bundle whose key hint names none of the keys given, and which
    /// none of them verifies.
    UnknownKey,
    /// A keyless (certificate) bundle none of the keys verifies.
    Keyless,
    /// It cannot be read.
    Unreadable(String),
}

/// Judges a legacy signature of the image `digest` (`sha256:<hex>`).
pub fn verify_legacy(found: &LegacySignature, digest: &str, signers: &[Signer<'_>]) -> Finding {
    let sig = match signature(&found.signature, "the signature annotation") {
        Ok(sig) => sig,
        Err(e) => return Finding::Unreadable(crate::error::error_chain(&e)),
    };
    let Some(signer) = signers
        .iter()
        .find(|s| s.key.verifies(&found.payload, &sig))
    else {
        return Finding::Invalid;
    };
    let authority = signer.authority.to_string();
    match SimpleSigning::parse(&found.payload) {
        Ok(p) if p.digest.as_str() == digest => Finding::Verified { authority },
        Ok(p) => Finding::OtherDigest {
            authority,
            digest: p.digest.to_string(),
        },
        Err(e) => Finding::Unreadable(crate::error::error_chain(&e)),
    }
}

/// Judges a Sigstore bundle attached to the image `digest`.
pub fn verify_bundle(bytes: &[u8], digest: &str, signers: &[Signer<'_>]) -> Finding {
    let bundle = match Bundle::parse(bytes) {
        Ok(b) => b,
        Err(e) => return Finding::Unreadable(crate::error::error_chain(&e)),
    };
    let hex = digest.strip_prefix("sha256:").unwrap_or_default();
    let (signer, named) = match &bundle.content {
        BundleContent::Dsse(dsse) => {
            let pae = dsse.pae();
            let signer = signers
                .iter()
                .find(|s| dsse.signatures.iter().any(|sig| s.key.verifies(&pae, sig)));
            let named = signer.map(|_| dsse.subjects());
            (
                signer,
                named.map(|n| n.map(|hexes| hexes.into_iter().collect())),
            )
        }
        BundleContent::Message(m) => {
            let signer = signers
                .iter()
                .find(|s| s.key.verifies_prehash(&m.digest, &m.signature));
            (
                signer,
                signer.map(|_| Ok(vec![crate::oci::blob::hex(&m.digest)])),
            )
        }
    };
    let Some(signer) = signer else {
        return unverified(&bundle, signers);
    };
    let authority = signer.authority.to_string();
    match named {
        Some(Ok(hexes)) if hexes.iter().any(|h| h == hex) => Finding::Verified { authority },
        Some(Ok(hexes)) => Finding::OtherDigest {
            authority,
            digest: hexes
                .first()
                .map_or_else(|| "no subject".to_string(), |h| format!("sha256:{h}")),
        },
        Some(Err(e)) => Finding::Unreadable(crate::error::error_chain(&e)),
        None => Finding::Invalid,
    }
}

/// Why no key verifies `bundle`, as precisely as it says.
fn unverified(bundle: &Bundle, signers: &[Signer<'_>]) -> Finding {
    if bundle.keyless {
        return Finding::Keyless;
    }
    match &bundle.hint {
        Some(hint) if !signers.iter().any(|s| s.key.hint() == hint) => Finding::UnknownKey,
        _ => Finding::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::fixtures::{DSSE_BUNDLE, PEM};
    use proptest::prelude::*;

    /// What `cosign sign --new-bundle-format=false` (v3.0.6) pushed for
    /// `sha256:2e49c7cb...` with the key of `PEM`.
    const PAYLOAD: &str = r#"{"critical":{"identity":{"docker-reference":"127.0.0.1:41191/team/provider-a"},"image":{"docker-manifest-digest":"sha256:2e49c7cbb928dd7c25c6bea338bafa75a56dd9facb235191cf0f6df711eb00a6"},"type":"cosign container image signature"},"optional":null}"#;
    const SIGNATURE: &str = "MEUCIFuWebtzRQ6VX0a4Aph/WKBUGU2y1wBsYbiHGfxg1qnXAiEA+DsFGlhKBAFexRUXVoWzHEK1esaSXcl+gLsNpy9TZfE=";
    const LEGACY_DIGEST: &str =
        "sha256:2e49c7cbb928dd7c25c6bea338bafa75a56dd9facb235191cf0f6df711eb00a6";
    const BUNDLE_DIGEST: &str =
        "sha256:91ff0910d219ddfd54fbf18323149780b5343da2c558b1e9cdf6df7fe1e65cf0";
    /// Another P-256 key.
    const OTHER: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEq4OeMnckAUMeNSgexCUcRXs/EE3y
GysVxcq8EbLEh4pv5fXabYAYNVYvrdLyAfsmo5XVoNByNzj+UcbTcMt4Ww==
-----END PUBLIC KEY-----
";

    fn legacy(payload: &str, signature: &str) -> LegacySignature {
        LegacySignature {
            payload: payload.as_bytes().to_vec(),
            signature: signature.to_string(),
        }
    }

    #[test]
    fn legacy_signatures() {
        let key = PublicKey::from_pem(PEM).expect("key");
        let other = PublicKey::from_pem(OTHER).expect("other");
        let ours = [Signer {
            authority: "ours",
            key: &key,
        }];
        let theirs = [Signer {
            authority: "theirs",
            key: &other,
        }];
        let good = legacy(PAYLOAD, SIGNATURE);
        let verified = Finding::Verified {
            authority: "ours".into(),
        };
        assert_eq!(verify_legacy(&good, LEGACY_DIGEST, &ours), verified);
        assert_eq!(
            verify_legacy(&good, BUNDLE_DIGEST, &ours),
            Finding::OtherDigest {
                authority: "ours".into(),
                digest: LEGACY_DIGEST.into()
            }
        );
        assert_eq!(
            verify_legacy(&good, LEGACY_DIGEST, &theirs),
            Finding::Invalid
        );
        assert_eq!(verify_legacy(&good, LEGACY_DIGEST, &[]), Finding::Invalid);
        let tampered = legacy(&PAYLOAD.replace("2e49", "2e48"), SIGNATURE);
        assert_eq!(
            verify_legacy(&tampered, LEGACY_DIGEST, &ours),
            Finding::Invalid
        );
        assert!(matches!(
            verify_legacy(&legacy(PAYLOAD, "!!"), LEGACY_DIGEST, &ours),
            Finding::Unreadable(m) if m.contains("base64")
        ));
    }

    #[test]
    fn bundles() {
        let key = PublicKey::from_pem(PEM).expect("key");
        let other = PublicKey::from_pem(OTHER).expect("other");
        let ours = [Signer {
            authority: "ours",
            key: &key,
        }];
        let theirs = [Signer {
            authority: "theirs",
            key: &other,
        }];
        let bundle = DSSE_BUNDLE.as_bytes();
        assert_eq!(
            verify_bundle(bundle, BUNDLE_DIGEST, &ours),
            Finding::Verified {
                authority: "ours".into()
            }
        );
        assert_eq!(
            verify_bundle(bundle, LEGACY_DIGEST, &ours),
            Finding::OtherDigest {
                authority: "ours".into(),
                digest: BUNDLE_DIGEST.into()
            }
        );
        assert_eq!(
            verify_bundle(bundle, BUNDLE_DIGEST, &theirs),
            Finding::UnknownKey
        );
        // The hint names the key, but the signature is not its.
        let tampered = DSSE_BUNDLE.replace("MEUCIQDyxh3D", "MEUCIQDyxh3E");
        assert_eq!(
            verify_bundle(tampered.as_bytes(), BUNDLE_DIGEST, &ours),
            Finding::Invalid
        );
        assert!(matches!(
            verify_bundle(b"{}", BUNDLE_DIGEST, &ours),
            Finding::Unreadable(_)
        ));
    }

    proptest! {
        #[test]
        fn any_legacy_signature_is_judged(payload in ".{0,300}", sig in "[A-Za-z0-9+/=]{0,120}|.{0,20}") {
            let key = PublicKey::from_pem(PEM).expect("key");
            let ours = [Signer { authority: "ours", key: &key }];
            let found = verify_legacy(&legacy(&payload, &sig), LEGACY_DIGEST, &ours);
            let verified = matches!(found, Finding::Verified { .. });
            prop_assert!(!verified);
        }

        #[test]
        fn any_bundle_bytes_are_judged(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let key = PublicKey::from_pem(PEM).expect("key");
            let ours = [Signer { authority: "ours", key: &key }];
            let verified = matches!(verify_bundle(&bytes, BUNDLE_DIGEST, &ours), Finding::Verified { .. });
            prop_assert!(!verified);
        }
    }
}
