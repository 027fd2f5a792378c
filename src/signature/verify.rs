//! One signature against the keys of the authorities, for one image
//! digest: which authority's key made it, and whether it vouches for that
//! digest (the simple-signing payload's `docker-manifest-digest`, the
//! in-toto statement's subject, the message signature's digest).
//!
//! The signature is verified before anything it signs is believed; the
//! digest it names is compared only once it is.

use super::bundle::{Bundle, BundleContent, signature};
use super::error::Error;
use super::material::LegacySignature;
use super::payload::SimpleSigning;
use super::sigstore::{CHAIN_ANNOTATION, Tlog, pem_certificates, rekor_bundle};
use super::trust::Trust;
use crate::keyless::{Evidence, Failure, Signed};

/// An authority's trust, by the authority's name.
#[derive(Clone, Copy, Debug)]
pub struct Signer<'a> {
    pub authority: &'a str,
    pub trust: &'a Trust,
}

/// What one signature says of one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// The authority's key or trusted root vouches for it, for this image.
    Verified { authority: String },
    /// The authority vouches for it, for another image (`digest`).
    OtherDigest { authority: String, digest: String },
    /// No key given verifies it.
    Invalid,
    /// A bundle whose key hint names none of the keys given, and which
    /// none of them verifies.
    UnknownKey,
    /// A keyless (certificate) signature, and no authority is keyless.
    Keyless,
    /// A keyless signature the first keyless authority (in the order
    /// given) refused, and why.
    Refused { authority: String, failure: Failure },
    /// It cannot be read.
    Unreadable(String),
}

fn unreadable(e: &Error) -> Finding {
    Finding::Unreadable(crate::error::error_chain(e))
}

/// Judges a legacy signature of the image `digest` (`sha256:<hex>`): by
/// the keys first, then, when it carries a certificate, by the keyless
/// authorities.
pub fn verify_legacy(found: &LegacySignature, digest: &str, signers: &[Signer<'_>]) -> Finding {
    let sig = match signature(&found.signature, "the signature annotation") {
        Ok(sig) => sig,
        Err(e) => return unreadable(&e),
    };
    let keyed = signers.iter().find(|s| match s.trust {
        Trust::Key(key) => key.verifies(&found.payload, &sig),
        Trust::Keyless(_) => false,
    });
    let signer = match (keyed, &found.certificate) {
        (Some(signer), _) => signer,
        (None, None) => return Finding::Invalid,
        (None, Some(certificate)) => match legacy_keyless(found, certificate, &sig, signers) {
            Ok(signer) => signer,
            Err(finding) => return finding,
        },
    };
    let authority = signer.authority.to_string();
    match SimpleSigning::parse(&found.payload) {
        Ok(p) if p.digest.as_str() == digest => Finding::Verified { authority },
        Ok(p) => Finding::OtherDigest {
            authority,
            digest: p.digest.to_string(),
        },
        Err(e) => unreadable(&e),
    }
}

/// The keyless authority that vouches for a legacy signature carrying
/// `certificate`, or the finding that none does.
fn legacy_keyless<'s, 'a>(
    found: &LegacySignature,
    certificate: &str,
    sig: &[u8],
    signers: &'s [Signer<'a>],
) -> Result<&'s Signer<'a>, Finding> {
    let mut chain =
        pem_certificates(certificate, "the certificate annotation").map_err(|e| unreadable(&e))?;
    if let Some(pem) = &found.chain {
        chain.extend(pem_certificates(pem, CHAIN_ANNOTATION).map_err(|e| unreadable(&e))?);
    }
    let tlog = match &found.rekor {
        Some(text) => Some(rekor_bundle(text).map_err(|e| unreadable(&e))?),
        None => None,
    };
    certified(
        signers,
        &chain,
        tlog.as_ref(),
        sig,
        Signed::Bytes(&found.payload),
    )
}

/// The first keyless authority that verifies the signature `sig` over
/// what was `signed`, by the certificates `chain` (leaf first), logged as
/// `tlog`;
/// otherwise the first one's refusal, or [`Finding::Keyless`] when no
/// authority is keyless.
fn certified<'s, 'a>(
    signers: &'s [Signer<'a>],
    chain: &[Vec<u8>],
    tlog: Option<&Tlog>,
    sig: &[u8],
    signed: Signed<'_>,
) -> Result<&'s Signer<'a>, Finding> {
    let evidence = Evidence {
        chain,
        signature: sig,
        signed,
        tlog: tlog.map(Tlog::entry),
    };
    let mut refused = None;
    for signer in signers {
        let Trust::Keyless(keyless) = signer.trust else {
            continue;
        };
        match crate::keyless::verify(&keyless.root, &keyless.identities, &evidence) {
            Ok(()) => return Ok(signer),
            Err(failure) => {
                refused.get_or_insert(Finding::Refused {
                    authority: signer.authority.to_string(),
                    failure,
                });
            }
        }
    }
    Err(refused.unwrap_or(Finding::Keyless))
}

/// An authority that vouches for a bundle, and the image digests (hex)
/// the bundle signs.
struct Vouched<'s, 'a> {
    signer: &'s Signer<'a>,
    digests: Result<Vec<String>, Error>,
}

/// Judges a Sigstore bundle attached to the image `digest`.
pub fn verify_bundle(bytes: &[u8], digest: &str, signers: &[Signer<'_>]) -> Finding {
    let bundle = match Bundle::parse(bytes) {
        Ok(b) => b,
        Err(e) => return unreadable(&e),
    };
    let vouched = match bundle_keyed(&bundle, signers) {
        Some(vouched) => vouched,
        None if bundle.keyless => match bundle_keyless(&bundle, signers) {
            Ok(vouched) => vouched,
            Err(finding) => return finding,
        },
        None => return unverified(&bundle, signers),
    };
    let hex = digest.strip_prefix("sha256:").unwrap_or_default();
    let authority = vouched.signer.authority.to_string();
    match vouched.digests {
        Ok(hexes) if hexes.iter().any(|h| h == hex) => Finding::Verified { authority },
        Ok(hexes) => Finding::OtherDigest {
            authority,
            digest: hexes
                .first()
                .map_or_else(|| "no subject".to_string(), |h| format!("sha256:{h}")),
        },
        Err(e) => unreadable(&e),
    }
}

/// The key authority whose key made `bundle`'s signature, if any.
fn bundle_keyed<'s, 'a>(bundle: &Bundle, signers: &'s [Signer<'a>]) -> Option<Vouched<'s, 'a>> {
    let mut keys = signers.iter().filter_map(|s| match s.trust {
        Trust::Key(key) => Some((s, key)),
        Trust::Keyless(_) => None,
    });
    match &bundle.content {
        BundleContent::Dsse(dsse) => {
            let pae = dsse.pae();
            let (signer, _) =
                keys.find(|(_, key)| dsse.signatures.iter().any(|sig| key.verifies(&pae, sig)))?;
            Some(Vouched {
                signer,
                digests: dsse.subjects(),
            })
        }
        BundleContent::Message(m) => {
            let (signer, _) =
                keys.find(|(_, key)| key.verifies_prehash(&m.digest, &m.signature))?;
            Some(Vouched {
                signer,
                digests: Ok(vec![crate::oci::blob::hex(&m.digest)]),
            })
        }
    }
}

/// The keyless authority that vouches for a keyless bundle, or the
/// finding that none does: a DSSE envelope's first signature over its
/// PAE, logged as a `dsse` entry; a message signature over the manifest
/// digest as it is, logged as a `hashedrekord` of that digest.
fn bundle_keyless<'s, 'a>(
    bundle: &Bundle,
    signers: &'s [Signer<'a>],
) -> Result<Vouched<'s, 'a>, Finding> {
    let certify =
        |sig: &[u8], signed| certified(signers, &bundle.chain, bundle.tlog.as_ref(), sig, signed);
    match &bundle.content {
        BundleContent::Dsse(dsse) => {
            let sig = dsse.signatures.first().map_or(&[][..], Vec::as_slice);
            let pae = dsse.pae();
            let signed = Signed::Dsse {
                pae: &pae,
                payload: &dsse.payload,
            };
            Ok(Vouched {
                signer: certify(sig, signed)?,
                digests: dsse.subjects(),
            })
        }
        BundleContent::Message(m) => Ok(Vouched {
            signer: certify(&m.signature, Signed::Sha256(&m.digest))?,
            digests: Ok(vec![crate::oci::blob::hex(&m.digest)]),
        }),
    }
}

/// Why no key verifies the key-signed `bundle`, as precisely as it says.
fn unverified(bundle: &Bundle, signers: &[Signer<'_>]) -> Finding {
    let held = |hint: &str| {
        signers
            .iter()
            .any(|s| matches!(s.trust, Trust::Key(key) if key.hint() == hint))
    };
    match &bundle.hint {
        Some(hint) if !held(hint) => Finding::UnknownKey,
        _ => Finding::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::PublicKey;
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
            ..LegacySignature::default()
        }
    }

    #[test]
    fn legacy_signatures() {
        let key = Trust::Key(PublicKey::from_pem(PEM).expect("key"));
        let other = Trust::Key(PublicKey::from_pem(OTHER).expect("other"));
        let (ours, theirs) = (only("ours", &key), only("theirs", &other));
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
        let key = Trust::Key(PublicKey::from_pem(PEM).expect("key"));
        let other = Trust::Key(PublicKey::from_pem(OTHER).expect("other"));
        let (ours, theirs) = (only("ours", &key), only("theirs", &other));
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

    fn keyless(root: &str, issuer: &str, subject: &str) -> Trust {
        use crate::keyless::{Identity, Subject, TrustedRoot};
        let identity = Identity {
            issuer: issuer.into(),
            subject: Subject::Exact(subject.into()),
        };
        let parsed = TrustedRoot::parse(root.as_bytes()).expect("root");
        Trust::Keyless(super::super::Keyless::new(
            parsed,
            root.as_bytes(),
            vec![identity],
        ))
    }

    /// The refusal of the keyless fixtures by a [`wrong_identities`] one.
    const NO_MATCH: &str =
        "no matching identity (issuer https://accounts.example.com, subject alice@example.com)";

    /// Trusting `root`, for a wrong issuer, then for a wrong subject.
    fn wrong_identities(root: &str) -> [Trust; 2] {
        use crate::keyless::fixtures::{EMAIL, ISSUER};
        [
            keyless(root, "https://other.example", EMAIL),
            keyless(root, ISSUER, "bob@example.com"),
        ]
    }

    /// The one authority `authority`, trusting `trust`.
    fn only<'a>(authority: &'a str, trust: &'a Trust) -> [Signer<'a>; 1] {
        [Signer { authority, trust }]
    }

    /// The authority `ci` trusting `trust`.
    fn ci(trust: &Trust) -> [Signer<'_>; 1] {
        only("ci", trust)
    }

    /// The authority `key` trusting `key`, then `ci` trusting `ci`.
    fn key_then_ci<'a>(key: &'a Trust, ci: &'a Trust) -> [Signer<'a>; 2] {
        [
            Signer {
                authority: "key",
                trust: key,
            },
            Signer {
                authority: "ci",
                trust: ci,
            },
        ]
    }

    fn refused(finding: &Finding) -> &Failure {
        match finding {
            Finding::Refused { failure, .. } => failure,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn keyless_legacy_signatures() {
        use crate::keyless::fixtures::{EMAIL, ISSUER};
        let signed = crate::signature::fixtures::keyless_signed(LEGACY_DIGEST);
        let (root, good) = (signed.root, signed.legacy);
        let right = keyless(&root, ISSUER, EMAIL);
        let key = Trust::Key(PublicKey::from_pem(PEM).expect("key"));
        let signers = key_then_ci(&key, &right);
        let verified = Finding::Verified {
            authority: "ci".into(),
        };
        assert_eq!(verify_legacy(&good, LEGACY_DIGEST, &signers), verified);
        assert_eq!(
            verify_legacy(&good, BUNDLE_DIGEST, &signers),
            Finding::OtherDigest {
                authority: "ci".into(),
                digest: LEGACY_DIGEST.into()
            }
        );
        // Wrong issuer, wrong subject: refused, naming what was found.
        for wrong in wrong_identities(&root) {
            let found = verify_legacy(&good, LEGACY_DIGEST, &ci(&wrong));
            assert_eq!(refused(&found).to_string(), NO_MATCH);
        }
        // Another test CA and log: not trusted.
        let other_root = crate::signature::fixtures::keyless_signed(LEGACY_DIGEST).root;
        let stranger = keyless(&other_root, ISSUER, EMAIL);
        let found = verify_legacy(
            &good,
            LEGACY_DIGEST,
            &[Signer {
                authority: "ci",
                trust: &stranger,
            }],
        );
        assert!(
            matches!(refused(&found), Failure::UnknownLog { .. }),
            "{found:?}"
        );
        // No keyless authority; no log entry; a tampered one; unreadable.
        assert_eq!(
            verify_legacy(&good, LEGACY_DIGEST, &signers[..1]),
            Finding::Keyless
        );
        let unlogged = LegacySignature {
            rekor: None,
            ..good.clone()
        };
        let found = verify_legacy(&unlogged, LEGACY_DIGEST, &signers);
        assert_eq!(refused(&found), &Failure::NoTlogEntry);
        let payload = String::from_utf8(good.payload.clone()).expect("utf-8");
        let tampered = LegacySignature {
            payload: payload.replace("test", "tost").into_bytes(),
            ..good.clone()
        };
        let found = verify_legacy(&tampered, LEGACY_DIGEST, &signers);
        assert_eq!(refused(&found), &Failure::SignatureInvalid);
        for (certificate, rekor) in [("x", good.rekor.clone()), ("", Some("{}".into()))] {
            let broken = LegacySignature {
                certificate: Some(certificate.into()),
                rekor,
                ..good.clone()
            };
            let found = verify_legacy(&broken, LEGACY_DIGEST, &signers);
            assert!(
                matches!(found, Finding::Unreadable(_) | Finding::Refused { .. }),
                "{found:?}"
            );
        }
    }

    #[test]
    fn keyless_legacy_signatures_chain_through_the_chain_annotation() {
        use crate::keyless::fixtures::{EMAIL, ISSUER};
        let (root, good) =
            crate::signature::fixtures::keyless_signed_through_intermediate(LEGACY_DIGEST);
        let right = keyless(&root, ISSUER, EMAIL);
        let signers = [Signer {
            authority: "ci",
            trust: &right,
        }];
        assert_eq!(
            verify_legacy(&good, LEGACY_DIGEST, &signers),
            Finding::Verified {
                authority: "ci".into()
            }
        );
        let unchained = LegacySignature {
            chain: None,
            ..good
        };
        let found = verify_legacy(&unchained, LEGACY_DIGEST, &signers);
        assert!(
            matches!(refused(&found), Failure::CertificateNotTrusted(_)),
            "{found:?}"
        );
    }

    #[test]
    fn keyless_bundles_verify_by_identity() {
        use crate::keyless::fixtures::{EMAIL, ISSUER};
        let signed = crate::signature::fixtures::keyless_signed(LEGACY_DIGEST);
        let right = keyless(&signed.root, ISSUER, EMAIL);
        let key = Trust::Key(PublicKey::from_pem(PEM).expect("key"));
        let signers = key_then_ci(&key, &right);
        for (form, bundle) in [
            ("message signature", &signed.message_bundle),
            ("DSSE", &signed.dsse_bundle),
        ] {
            let parsed = Bundle::parse(bundle).expect("bundle");
            assert!(parsed.keyless && parsed.chain.len() == 1 && parsed.tlog.is_some());
            assert_eq!(
                verify_bundle(bundle, LEGACY_DIGEST, &signers),
                Finding::Verified {
                    authority: "ci".into()
                },
                "{form}"
            );
            assert_eq!(
                verify_bundle(bundle, BUNDLE_DIGEST, &signers),
                Finding::OtherDigest {
                    authority: "ci".into(),
                    digest: LEGACY_DIGEST.into()
                },
                "{form}"
            );
            for wrong in wrong_identities(&signed.root) {
                let found = verify_bundle(bundle, LEGACY_DIGEST, &ci(&wrong));
                assert_eq!(refused(&found).to_string(), NO_MATCH, "{form}");
            }
            assert_eq!(
                verify_bundle(bundle, LEGACY_DIGEST, &signers[..1]),
                Finding::Keyless,
                "{form}: no keyless authority"
            );
        }
    }

    proptest! {
        #[test]
        fn any_legacy_signature_is_judged(payload in ".{0,300}", sig in "[A-Za-z0-9+/=]{0,120}|.{0,20}") {
            let key = Trust::Key(PublicKey::from_pem(PEM).expect("key"));
            let ours = [Signer { authority: "ours", trust: &key }];
            let found = verify_legacy(&legacy(&payload, &sig), LEGACY_DIGEST, &ours);
            let verified = matches!(found, Finding::Verified { .. });
            prop_assert!(!verified);
        }

        #[test]
        fn any_bundle_bytes_are_judged(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let key = Trust::Key(PublicKey::from_pem(PEM).expect("key"));
            let ours = [Signer { authority: "ours", trust: &key }];
            let verified = matches!(verify_bundle(&bytes, BUNDLE_DIGEST, &ours), Finding::Verified { .. });
            prop_assert!(!verified);
        }
    }
}
