//! Keyless verification against the test material of `fixtures`.

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use rcgen::{CustomExtension, KeyPair, PKCS_ECDSA_P256_SHA256, PublicKeyData, SanType, SigningKey};
use serde_json::json;
use sha2::Digest;

use super::fixtures::*;
use super::root::{Error, MEDIA_TYPE};
use super::*;

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| Fixture::simple(LeafSpec::default()));

fn exact(issuer: &str, subject: &str) -> Identity {
    Identity {
        issuer: issuer.to_owned(),
        subject: Subject::Exact(subject.to_owned()),
    }
}

fn regex(subject: &str) -> Identity {
    Identity {
        issuer: ISSUER.to_owned(),
        subject: Subject::Regex(regex_lite::Regex::new(subject).unwrap()),
    }
}

#[test]
fn keyless_right_identity_passes() {
    assert_eq!(
        FIXTURE.verify(&[exact("https://other", EMAIL), exact(ISSUER, EMAIL)]),
        Ok(())
    );
}

#[test]
fn keyless_wrong_issuer_or_subject_fails_naming_what_was_found() {
    let want = Failure::NoMatchingIdentity {
        found_issuer: ISSUER.to_owned(),
        found_subject: EMAIL.to_owned(),
    };
    assert_eq!(
        FIXTURE.verify(&[exact("https://accounts.example.org", EMAIL)]),
        Err(want.clone())
    );
    assert_eq!(
        FIXTURE.verify(&[exact(ISSUER, "bob@example.com")]),
        Err(want.clone())
    );
    assert_eq!(FIXTURE.verify(&[]), Err(want.clone()));
    assert_eq!(
        want.to_string(),
        "no matching identity (issuer https://accounts.example.com, subject alice@example.com)"
    );
}

#[test]
fn keyless_regex_subject_is_unanchored_as_cosign() {
    assert_eq!(FIXTURE.verify(&[regex(r"^alice@example\.com$")]), Ok(()));
    assert_eq!(FIXTURE.verify(&[regex(r"@example\.com$")]), Ok(()));
    // Unanchored, as Go's regexp.MatchString: a part of the subject matches.
    assert_eq!(FIXTURE.verify(&[regex(r"lice@exa")]), Ok(()));
    assert!(matches!(
        FIXTURE.verify(&[regex(r"^bob@")]),
        Err(Failure::NoMatchingIdentity { .. })
    ));
    assert!(matches!(
        FIXTURE.verify(&[regex(r"@example\.org")]),
        Err(Failure::NoMatchingIdentity { .. })
    ));
}

#[test]
fn keyless_set_signed_by_another_key_fails() {
    let other = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let forged = set(&other, &FIXTURE.body, FIXTURE.time, &FIXTURE.log_id);
    let evidence = Evidence {
        tlog: Some(TlogEntry {
            signed_entry_timestamp: &forged,
            ..FIXTURE.tlog()
        }),
        ..FIXTURE.evidence()
    };
    assert!(matches!(
        verify(&FIXTURE.root, &[exact(ISSUER, EMAIL)], &evidence),
        Err(Failure::InvalidSet(_))
    ));
    // The SET covers the time: a valid SET for another time does not move it.
    let moved = Evidence {
        tlog: Some(TlogEntry {
            integrated_time: FIXTURE.time + 1,
            ..FIXTURE.tlog()
        }),
        ..FIXTURE.evidence()
    };
    assert!(matches!(
        verify(&FIXTURE.root, &[exact(ISSUER, EMAIL)], &moved),
        Err(Failure::InvalidSet(_))
    ));
}

#[test]
fn keyless_missing_or_unknown_log_fails() {
    let none = Evidence {
        tlog: None,
        ..FIXTURE.evidence()
    };
    assert_eq!(
        verify(&FIXTURE.root, &[exact(ISSUER, EMAIL)], &none),
        Err(Failure::NoTlogEntry)
    );
    let unknown = Evidence {
        tlog: Some(TlogEntry {
            log_id: &[7; 32],
            ..FIXTURE.tlog()
        }),
        ..FIXTURE.evidence()
    };
    assert!(matches!(
        verify(&FIXTURE.root, &[exact(ISSUER, EMAIL)], &unknown),
        Err(Failure::UnknownLog { log_id }) if log_id == hex(&[7; 32])
    ));
}

#[test]
fn keyless_integrated_time_outside_the_leaf_validity_fails() {
    let ok = [exact(ISSUER, EMAIL)];
    for time in [T0, T0 + LIFETIME] {
        assert_eq!(
            Fixture::simple(LeafSpec::default()).at(time).verify(&ok),
            Ok(()),
            "{time}"
        );
    }
    for time in [T0 - 1, T0 + LIFETIME + 1, T0 + 86_400] {
        let failure = Fixture::simple(LeafSpec::default()).at(time).verify(&ok);
        assert_eq!(
            failure,
            Err(Failure::CertificateExpiredAtSigning {
                integrated_time: time,
                not_before: T0,
                not_after: T0 + LIFETIME
            }),
            "{time}"
        );
    }
}

#[test]
fn keyless_chain_to_an_untrusted_ca_fails() {
    let trusted = root_ca("test fulcio");
    let rogue = root_ca("test fulcio");
    let (der, key) = leaf(&rogue, LeafSpec::default());
    let fixture = Fixture::new(vec![der], key, &[std::slice::from_ref(&trusted.der)]);
    assert!(matches!(
        fixture.verify(&[exact(ISSUER, EMAIL)]),
        Err(Failure::CertificateNotTrusted(_))
    ));
    // Carrying the rogue root along does not make it trusted.
    let fixture = Fixture {
        chain: vec![fixture.chain[0].clone(), rogue.der.clone()],
        ..fixture
    };
    let evidence = fixture.evidence();
    assert!(matches!(
        verify(&fixture.root, &[exact(ISSUER, EMAIL)], &evidence),
        Err(Failure::CertificateNotTrusted(_))
    ));
}

#[test]
fn keyless_intermediates_from_the_signature_or_the_root() {
    let root = root_ca("test root");
    let intermediate = intermediate_ca("test intermediate", &root);
    let ok = [exact(ISSUER, EMAIL)];
    // The signature carries the intermediate; the trusted root has the root.
    let (der, key) = leaf(&intermediate, LeafSpec::default());
    let carried = Fixture::new(
        vec![der.clone(), intermediate.der.clone()],
        key,
        &[std::slice::from_ref(&root.der)],
    );
    assert_eq!(carried.verify(&ok), Ok(()));
    let alone = Fixture {
        chain: vec![der],
        ..carried
    };
    assert!(matches!(
        alone.verify(&ok),
        Err(Failure::CertificateNotTrusted(_))
    ));
    // The trusted root's authority has both, as Fulcio's does.
    let (der, key) = leaf(&intermediate, LeafSpec::default());
    let fixture = Fixture::new(
        vec![der],
        key,
        &[&[intermediate.der.clone(), root.der.clone()]],
    );
    assert_eq!(fixture.verify(&ok), Ok(()));
}

#[test]
fn keyless_leaf_needs_code_signing() {
    let fixture = Fixture::simple(LeafSpec {
        code_signing: false,
        ..LeafSpec::default()
    });
    assert!(matches!(
        fixture.verify(&[exact(ISSUER, EMAIL)]),
        Err(Failure::CertificateNotTrusted(_))
    ));
}

#[test]
fn keyless_legacy_issuer_and_uri_subject() {
    let uri = "https://github.com/example/repo/.github/workflows/release.yml@refs/heads/main";
    let fixture = Fixture::simple(LeafSpec {
        issuer: Some(CustomExtension::from_oid_content(
            FULCIO_ISSUER_V1,
            ISSUER.as_bytes().to_vec(),
        )),
        san: SanType::URI(uri.try_into().unwrap()),
        code_signing: true,
    });
    assert_eq!(fixture.verify(&[exact(ISSUER, uri)]), Ok(()));
    let none = Fixture::simple(LeafSpec {
        issuer: None,
        ..LeafSpec::default()
    });
    assert_eq!(
        none.verify(&[exact(ISSUER, EMAIL)]),
        Err(Failure::NoMatchingIdentity {
            found_issuer: "none".to_owned(),
            found_subject: EMAIL.to_owned()
        })
    );
}

#[test]
fn keyless_tampered_signed_fails() {
    let mut tampered = FIXTURE.signed.clone();
    tampered[0] ^= 1;
    let evidence = Evidence {
        signed: Signed::Bytes(&tampered),
        ..FIXTURE.evidence()
    };
    assert_eq!(
        verify(&FIXTURE.root, &[exact(ISSUER, EMAIL)], &evidence),
        Err(Failure::SignatureInvalid)
    );
}

#[test]
fn keyless_body_for_another_signature_fails() {
    let ca = root_ca("test fulcio");
    let (der, key) = leaf(&ca, LeafSpec::default());
    let mut fixture = Fixture::new(vec![der], key, &[std::slice::from_ref(&ca.der)]);
    let other = fixture.leaf_key.sign(b"another artifact").unwrap();
    fixture.body = body(&other, &fixture.chain[0], b"another artifact");
    let fixture = fixture.at(T0 + 60);
    assert!(matches!(
        fixture.verify(&[exact(ISSUER, EMAIL)]),
        Err(Failure::BodyMismatch(_))
    ));
    // Same signature, digest of other content.
    let mut fixture = fixture;
    fixture.body = body(&fixture.signature, &fixture.chain[0], b"another artifact");
    let fixture = fixture.at(T0 + 60);
    assert!(matches!(
        fixture.verify(&[exact(ISSUER, EMAIL)]),
        Err(Failure::BodyMismatch(_))
    ));
    // A DSSE entry, for a signature over bytes.
    let mut fixture = fixture;
    fixture.body = dsse_body(&fixture.signature, &fixture.chain[0], &fixture.signed);
    let fixture = fixture.at(T0 + 60);
    assert_eq!(
        fixture.verify(&[exact(ISSUER, EMAIL)]),
        Err(Failure::BodyMismatch(
            "it records a DSSE envelope, not this signature".into()
        ))
    );
    // Another kind of entry.
    let mut fixture = fixture;
    fixture.body = br#"{"apiVersion":"0.0.2","kind":"intoto","spec":{}}"#.to_vec();
    let fixture = fixture.at(T0 + 60);
    assert!(matches!(
        fixture.verify(&[exact(ISSUER, EMAIL)]),
        Err(Failure::Malformed(why)) if why.contains("unsupported tlog kind \"intoto\"")
    ));
}

/// A DSSE envelope of `payload` signed by `FIXTURE`'s leaf: its PAE and
/// the logged signature.
fn dsse_signed(payload: &[u8]) -> (Vec<u8>, Logged) {
    let envelope = crate::signature::Dsse {
        payload_type: crate::signature::IN_TOTO.to_owned(),
        payload: payload.to_vec(),
        signatures: Vec::new(),
    };
    let pae = envelope.pae();
    let logged = FIXTURE.sign_dsse(&pae, payload);
    (pae, logged)
}

fn evidence<'a>(logged: &'a Logged, signed: Signed<'a>) -> Evidence<'a> {
    Evidence {
        chain: &FIXTURE.chain,
        signature: &logged.signature,
        signed,
        tlog: Some(logged.tlog()),
    }
}

/// `logged` with its body replaced by `body`, under a fresh SET.
fn relogged(logged: &Logged, body: Vec<u8>) -> Logged {
    Logged {
        signature: logged.signature.clone(),
        set: set(&FIXTURE.log, &body, FIXTURE.time, &FIXTURE.log_id),
        body,
        time: FIXTURE.time,
        log_id: FIXTURE.log_id.clone(),
    }
}

#[test]
fn keyless_message_signatures_verify_over_their_digest() {
    let ok = [exact(ISSUER, EMAIL)];
    let digest = sha2::Sha256::digest(b"a manifest").to_vec();
    let other = sha2::Sha256::digest(b"another manifest").to_vec();
    let message = FIXTURE.sign_digest(&digest);
    let check = |e: &Evidence<'_>| verify(&FIXTURE.root, &ok, e);
    assert_eq!(check(&evidence(&message, Signed::Sha256(&digest))), Ok(()));
    for wrong in [Signed::Sha256(&other), Signed::Bytes(&digest)] {
        assert_eq!(
            check(&evidence(&message, wrong)),
            Err(Failure::SignatureInvalid)
        );
    }
    // The entry must record the signed digest itself.
    let moved = relogged(
        &message,
        digest_body(&message.signature, &FIXTURE.chain[0], &other),
    );
    assert_eq!(
        check(&evidence(&moved, Signed::Sha256(&digest))),
        Err(Failure::BodyMismatch(
            "it records the digest of other content".into()
        ))
    );
    let wrong = [exact(ISSUER, "bob@example.com")];
    let found = verify(
        &FIXTURE.root,
        &wrong,
        &evidence(&message, Signed::Sha256(&digest)),
    );
    assert!(matches!(found, Err(Failure::NoMatchingIdentity { .. })));
}

#[test]
fn keyless_dsse_envelopes_verify_with_their_dsse_entry() {
    let ok = [exact(ISSUER, EMAIL)];
    let check = |e: &Evidence<'_>| verify(&FIXTURE.root, &ok, e);
    let payload = br#"{"_type":"https://in-toto.io/Statement/v1","subject":[]}"#;
    let (pae, dsse) = dsse_signed(payload);
    let signed = Signed::Dsse { pae: &pae, payload };
    assert_eq!(check(&evidence(&dsse, signed)), Ok(()));
    let wrong = [exact("https://other.example", EMAIL)];
    let found = verify(&FIXTURE.root, &wrong, &evidence(&dsse, signed));
    assert!(matches!(found, Err(Failure::NoMatchingIdentity { .. })));
    let cases: [(&str, Logged, Signed<'_>, &str); 4] = [
        (
            "a payload other than the logged one",
            relogged(&dsse, dsse_body(&dsse.signature, &FIXTURE.chain[0], b"{}")),
            signed,
            "it records the hash of another payload",
        ),
        (
            "another signature logged",
            relogged(
                &dsse,
                dsse_body(&FIXTURE.signature, &FIXTURE.chain[0], payload),
            ),
            signed,
            "it records another signature",
        ),
        (
            "logged with another certificate",
            relogged(
                &dsse,
                dsse_body(&dsse.signature, &root_ca("other").der, payload),
            ),
            signed,
            "it records another certificate",
        ),
        (
            "an envelope logged as a hashedrekord",
            relogged(&dsse, body(&dsse.signature, &FIXTURE.chain[0], &pae)),
            signed,
            "it records a hashedrekord, not the DSSE envelope",
        ),
    ];
    for (name, logged, signed, why) in cases {
        assert_eq!(
            check(&evidence(&logged, signed)),
            Err(Failure::BodyMismatch(why.into())),
            "{name}"
        );
    }
}

#[test]
fn keyless_trusted_root_refusals() {
    let good: serde_json::Value = serde_json::from_slice(&trusted_root(&[], &[])).unwrap();
    let parse = |value: &serde_json::Value| TrustedRoot::parse(value.to_string().as_bytes());
    assert!(matches!(
        parse(&good),
        Err(Error::Entry {
            what: "transparency log",
            ..
        })
    ));
    let mut other_type = good.clone();
    other_type["mediaType"] = json!("application/vnd.dev.sigstore.trustedroot+json;version=0.2");
    assert!(matches!(parse(&other_type), Err(Error::MediaType(_))));
    let many = json!({"mediaType": MEDIA_TYPE, "tlogs": vec![good["tlogs"][0].clone(); 65]});
    assert!(matches!(
        parse(&many),
        Err(Error::TooMany {
            what: "transparency logs",
            count: 65,
            max: 64
        })
    ));
    let big = vec![b' '; crate::spec::limits::MAX_TRUSTED_ROOT_LEN + 1];
    assert!(matches!(TrustedRoot::parse(&big), Err(Error::TooLarge(_))));
    let empty = json!({"mediaType": MEDIA_TYPE});
    let root = parse(&empty).unwrap();
    assert_eq!(root.ctlogs(), 0);
    let chainless = json!({"mediaType": MEDIA_TYPE, "certificateAuthorities": [{"certChain": {"certificates": []}}]});
    assert!(matches!(
        parse(&chainless),
        Err(Error::Entry {
            what: "certificate authority",
            ..
        })
    ));
}

#[test]
fn keyless_rfc3339_times() {
    use super::root::rfc3339;
    assert_eq!(rfc3339("2025-01-01T00:00:00Z", false), Ok(T0));
    assert_eq!(rfc3339("2025-01-01T00:00:00.000Z", true), Ok(T0));
    assert_eq!(rfc3339("2025-01-01T00:00:00.5Z", true), Ok(T0 + 1));
    assert_eq!(rfc3339("2025-01-01T00:00:00.5Z", false), Ok(T0));
    assert_eq!(rfc3339("2025-01-01T01:00:00+01:00", false), Ok(T0));
    assert_eq!(rfc3339("2024-12-31T23:30:00-00:30", false), Ok(T0));
    for bad in [
        "",
        "2025-01-01",
        "2025-01-01 00:00:00Z",
        "2025-13-01T00:00:00Z",
        "2025-01-01T00:00:00",
        "2025-01-01T00:00:00.Z",
        "２025-01-01T00:00:00Z",
    ] {
        assert!(rfc3339(bad, false).is_err(), "{bad}");
    }
}

#[test]
fn keyless_authority_valid_for_bounds_trust() {
    let ca = root_ca("test fulcio");
    let (der, key) = leaf(&ca, LeafSpec::default());
    let fixture = Fixture::new(vec![der], key, &[std::slice::from_ref(&ca.der)]);
    let mut root: serde_json::Value = serde_json::from_slice(&trusted_root(
        &fixture.log.subject_public_key_info(),
        &[std::slice::from_ref(&ca.der)],
    ))
    .unwrap();
    root["certificateAuthorities"][0]["validFor"]["end"] = json!("2024-12-31T00:00:00Z");
    let fixture = Fixture {
        root: TrustedRoot::parse(root.to_string().as_bytes()).unwrap(),
        ..fixture
    };
    assert!(matches!(
        fixture.verify(&[exact(ISSUER, EMAIL)]),
        Err(Failure::CertificateNotTrusted(_))
    ));
    root["certificateAuthorities"][0]["validFor"]["end"] = json!(null);
    root["tlogs"][0]["publicKey"]["validFor"]["end"] = json!("2024-12-31T00:00:00Z");
    let fixture = Fixture {
        root: TrustedRoot::parse(root.to_string().as_bytes()).unwrap(),
        ..fixture
    };
    assert!(matches!(
        fixture.verify(&[exact(ISSUER, EMAIL)]),
        Err(Failure::InvalidSet(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn keyless_parse_never_panics(json in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = TrustedRoot::parse(&json);
    }

    #[test]
    fn keyless_parse_never_panics_on_mutated_roots(at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut json = trusted_root(&FIXTURE.log.subject_public_key_info(), &[&FIXTURE.chain[..1]]);
        let i = at.index(json.len());
        json[i] = byte;
        let _ = TrustedRoot::parse(&json);
    }

    #[test]
    fn keyless_rfc3339_never_panics(text in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,4})?(Z|[+-][0-9]{2}:[0-9]{2})?|\\PC{0,40}") {
        let _ = super::root::rfc3339(&text, true);
    }

    #[test]
    fn keyless_verify_never_panics_on_arbitrary_evidence(
        leaf in proptest::collection::vec(any::<u8>(), 0..512),
        signature in proptest::collection::vec(any::<u8>(), 0..80),
        body in proptest::collection::vec(any::<u8>(), 0..512),
        set in proptest::collection::vec(any::<u8>(), 0..80),
        time in any::<i64>(),
        index in any::<i64>(),
    ) {
        let chain = vec![leaf];
        let evidence = Evidence {
            chain: &chain,
            signature: &signature,
            signed: Signed::Bytes(&body),
            tlog: Some(TlogEntry { log_id: &FIXTURE.log_id, log_index: index, integrated_time: time, canonicalized_body: &body, signed_entry_timestamp: &set }),
        };
        prop_assert!(verify(&FIXTURE.root, &[exact(ISSUER, EMAIL)], &evidence).is_err());
    }

    #[test]
    fn keyless_verify_refuses_any_flipped_byte(part in 0usize..4, at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut chain = FIXTURE.chain.clone();
        let (mut signature, mut signed, mut body) = (FIXTURE.signature.clone(), FIXTURE.signed.clone(), FIXTURE.body.clone());
        let target = match part { 0 => &mut chain[0], 1 => &mut signature, 2 => &mut signed, _ => &mut body };
        let i = at.index(target.len());
        target[i] ^= 1 << bit;
        let evidence = Evidence {
            chain: &chain,
            signature: &signature,
            signed: Signed::Bytes(&signed),
            tlog: Some(TlogEntry { canonicalized_body: &body, ..FIXTURE.tlog() }),
        };
        prop_assert!(verify(&FIXTURE.root, &[exact(ISSUER, EMAIL)], &evidence).is_err());
    }

    /// Bodies of every shape, under a valid SET and a valid DSSE
    /// signature, so that the body's reading is what is exercised.
    #[test]
    fn keyless_any_logged_body_is_read_or_refused(
        kind in "dsse|hashedrekord|intoto|[a-z]{0,8}",
        version in "0\\.0\\.1|\\PC{0,4}",
        hash in "[0-9a-f]{64}|\\PC{0,70}",
        ours in any::<bool>(),
        right_hash in any::<bool>(),
        signature in "[A-Za-z0-9+/=]{0,100}",
        verifier in "[A-Za-z0-9+/=]{0,100}",
    ) {
        let payload = b"{}";
        let (pae, dsse) = dsse_signed(payload);
        let true_hash = hex(&sha2::Sha256::digest(payload));
        let hash = if right_hash { true_hash.clone() } else { hash };
        let (signature, verifier) = if ours {
            (STANDARD.encode(&dsse.signature), STANDARD.encode(pem(&FIXTURE.chain[0])))
        } else {
            (signature, verifier)
        };
        let body = json!({"apiVersion": version, "kind": kind, "spec": {
            "payloadHash": {"algorithm": "sha256", "value": hash},
            "signatures": [{"signature": signature, "verifier": verifier}],
            "data": {"hash": {"algorithm": "sha256", "value": hash}},
            "signature": {"content": signature, "publicKey": {"content": verifier}},
        }});
        let logged = relogged(&dsse, body.to_string().into_bytes());
        let found = verify(&FIXTURE.root, &[exact(ISSUER, EMAIL)], &evidence(&logged, Signed::Dsse { pae: &pae, payload }));
        prop_assert_eq!(found.is_ok(), ours && kind == "dsse" && version == "0.0.1" && hash == true_hash);
    }
}
