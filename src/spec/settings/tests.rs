use super::*;
use crate::sdk::request::decode;
use serde_json::{Value as Json, json};

fn spec(extra: Json) -> XrSpec {
    let mut base = json!({
        "registry": {"accountId": "123456789012", "region": "eu-west-2"},
        "packages": [{"kind": "Provider", "repository": "upbound/provider-aws-s3", "version": "v2.2.0"}]
    });
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    decode(base).expect("spec")
}

fn input(value: Json) -> Input {
    decode(value).expect("input")
}

#[test]
fn xr_choices_win_over_input_defaults() {
    let s = Settings::new(
        XrRef::named("demo"),
        &spec(json!({"strategy": "Skip"})),
        &input(json!({"strategy": "Rewrite"})),
    )
    .expect("ok");
    assert_eq!(s.strategy, Strategy::Skip);
    let s = Settings::new(
        XrRef::named("demo"),
        &spec(json!({})),
        &input(json!({"strategy": "Skip"})),
    )
    .expect("ok");
    assert_eq!(s.strategy, Strategy::Skip);
    let s = Settings::new(XrRef::named("demo"), &spec(json!({})), &Input::default()).expect("ok");
    assert_eq!(s.strategy, Strategy::Rewrite);
}

/// An input whose allowlists admit the values the tests' XRs use.
fn permissive() -> Input {
    input(json!({"iam": {
        "allowedRoleNames": ["team-*"],
        "allowedOidcProviders": ["oidc.eks.*.amazonaws.com/id/*"],
        "allowedServiceAccounts": [{"namespace": "crossplane-system", "name": "provider-*"}],
        "allowedNodeRoleNames": ["eks-nodes-*"]
    }}))
}

#[test]
fn iam_defaults() {
    let s = Settings::new(XrRef::named("demo"), &spec(json!({})), &Input::default()).expect("ok");
    let iam = s.iam.expect("enabled by default");
    assert_eq!(
        iam.role_name,
        format!("demo-ecr-pull-{}", crate::names::hash(&["demo"]))
    );
    assert_eq!(
        iam.trust,
        Trust::PodIdentity {
            source_account: "123456789012".into(),
            cluster_arn: None
        }
    );
    assert!(iam.node_role_names.is_empty());
    assert_eq!(
        iam.service_accounts,
        vec![ServiceAccount {
            namespace: "crossplane-system".into(),
            name: "crossplane".into()
        }]
    );
    let long = "x".repeat(80);
    let s = Settings::new(XrRef::named(&long), &spec(json!({})), &Input::default()).expect("ok");
    assert_eq!(s.iam.expect("iam").role_name.len(), 64);
}

/// The default role name is `<readable>-<hash of the UID>`: one role per
/// XR instance, so two clusters of one account whose XRs share a name
/// (or an XR deleted and made again) never share a role.
#[test]
fn default_role_names_are_unique_per_xr_instance() {
    let xr = |name, uid| XrRef {
        uid: Some(uid),
        ..XrRef::named(name)
    };
    let uid_a = "5f0c6d1e-0000-4000-8000-00000000000a";
    let uid_b = "5f0c6d1e-0000-4000-8000-00000000000b";
    let hash_a = crate::names::hash(&[uid_a]);
    let (long, fifty_three) = ("y".repeat(80), "p".repeat(53));
    // (XR, input prefix, expected)
    let cases = [
        (
            xr("platform-packages", uid_a),
            None,
            format!("platform-packages-ecr-pull-{hash_a}"),
        ),
        (
            xr("platform-packages", uid_a),
            Some("team-a"),
            format!("team-a-{hash_a}"),
        ),
        // No UID: the name is hashed instead.
        (
            XrRef::named("demo"),
            None,
            format!("demo-ecr-pull-{}", crate::names::hash(&["demo"])),
        ),
        // Cut to fit, trailing punctuation dropped.
        (
            xr(&long, uid_a),
            None,
            format!("{}-{hash_a}", "y".repeat(53)),
        ),
        (
            xr("platform-packages", uid_a),
            Some(fifty_three.as_str()),
            format!("{}-{hash_a}", "p".repeat(53)),
        ),
        (xr("a", uid_a), Some("team-a."), format!("team-a-{hash_a}")),
    ];
    for (xr, prefix, expected) in cases {
        let name = default_role_name(xr, prefix);
        assert_eq!(name, expected, "{xr:?} {prefix:?}");
        assert!(name.len() <= MAX_ROLE_NAME, "{name}");
        check_role_name(&name).expect("an IAM role name");
    }
    // Same name, another cluster (another UID): another role.
    assert_ne!(
        default_role_name(xr("platform-packages", uid_a), None),
        default_role_name(xr("platform-packages", uid_b), None)
    );
    // Through the settings, with the input's prefix.
    let iam = Settings::new(
        xr("platform-packages", uid_b),
        &spec(json!({})),
        &input(json!({"iam": {"roleNamePrefix": "ecr-pull"}})),
    )
    .expect("ok")
    .iam
    .expect("iam");
    assert_eq!(
        iam.role_name,
        format!("ecr-pull-{}", crate::names::hash(&[uid_b]))
    );
}

/// The input's identity wins; the XR may choose only what
/// `allowedIdentities` lists, by default only the default identity.
#[test]
fn the_input_decides_the_identity() {
    let oidc = "oidc.eks.eu-west-2.amazonaws.com/id/P";
    let irsa = || Trust::Irsa {
        oidc_provider: oidc.into(),
    };
    let pod = |account: &str, cluster: Option<&str>| Trust::PodIdentity {
        source_account: account.into(),
        cluster_arn: cluster.map(str::to_string),
    };
    let cluster = "arn:aws:eks:eu-west-2:444455556666:cluster/prod";
    // (XR iam, input iam, the trust, or the refusal's message)
    let cases: Vec<(Json, Json, Result<Trust, &str>)> = vec![
        (json!({}), json!({"oidcProvider": oidc}), Ok(irsa())),
        (json!({}), json!({}), Ok(pod("123456789012", None))),
        (
            json!({}),
            json!({"identity": "PodIdentity", "oidcProvider": oidc, "clusterArn": cluster}),
            Ok(pod("444455556666", Some(cluster))),
        ),
        // The XR restating the default is no choice.
        (
            json!({"identity": "IRSA"}),
            json!({"oidcProvider": oidc}),
            Ok(irsa()),
        ),
        // The XR may not override the input's identity...
        (
            json!({"identity": "PodIdentity"}),
            json!({"identity": "IRSA", "oidcProvider": oidc}),
            Err("\"PodIdentity\" is not allowed (allowed: IRSA)"),
        ),
        (
            json!({"identity": "PodIdentity"}),
            json!({"oidcProvider": oidc}),
            Err("\"PodIdentity\" is not allowed (allowed: IRSA)"),
        ),
        (
            json!({"identity": "IRSA"}),
            json!({}),
            Err("\"IRSA\" is not allowed (allowed: PodIdentity)"),
        ),
        // ... unless the input lists the XR's choice.
        (
            json!({"identity": "PodIdentity"}),
            json!({"identity": "IRSA", "oidcProvider": oidc, "allowedIdentities": ["IRSA", "PodIdentity"]}),
            Ok(pod("123456789012", None)),
        ),
        (
            json!({"identity": "IRSA"}),
            json!({"identity": "PodIdentity", "oidcProvider": oidc, "allowedIdentities": ["PodIdentity"]}),
            Err("\"IRSA\" is not allowed (allowed: PodIdentity)"),
        ),
    ];
    for (xr_iam, platform, expected) in cases {
        let got = Settings::new(
            XrRef::named("demo"),
            &spec(json!({"iam": xr_iam})),
            &input(json!({"iam": platform})),
        )
        .map(|s| s.iam.expect("iam").trust);
        match (got, expected) {
            (Ok(trust), Ok(want)) => assert_eq!(trust, want, "{xr_iam} {platform}"),
            (
                Err(Error::Refused {
                    field,
                    allowlist,
                    message,
                }),
                Err(want),
            ) => {
                assert_eq!(
                    (field.as_str(), allowlist.as_str(), message.as_str()),
                    ("spec.iam.identity", "iam.allowedIdentities", want),
                    "{xr_iam} {platform}"
                );
            }
            (got, want) => panic!("{xr_iam} {platform}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn the_input_supplies_what_the_xr_leaves_unset() {
    let platform = input(json!({"iam": {
        "roleName": "platform-pull",
        "oidcProvider": "https://oidc.eks.eu-west-2.amazonaws.com/id/P",
        "serviceAccounts": [{"namespace": "crossplane-system", "name": "crossplane"}, {"namespace": "crossplane-system", "name": "provider-aws"}],
        "nodeRoleNames": ["eks-nodes"]
    }}));
    let iam = Settings::new(XrRef::named("demo"), &spec(json!({})), &platform)
        .expect("ok")
        .iam
        .expect("iam");
    assert_eq!(iam.role_name, "platform-pull");
    assert_eq!(
        iam.trust,
        Trust::Irsa {
            oidc_provider: "oidc.eks.eu-west-2.amazonaws.com/id/P".into()
        }
    );
    assert_eq!(iam.service_accounts.len(), 2);
    assert_eq!(iam.node_role_names, ["eks-nodes"]);
}

#[test]
fn allowed_xr_values_win() {
    let iam = Settings::new(
        XrRef::named("team-demo"),
        &spec(json!({"iam": {
            "roleName": "team-a-pull",
            "oidcProvider": "https://oidc.eks.eu-west-2.amazonaws.com/id/ABC",
            "serviceAccounts": [{"namespace": "crossplane-system", "name": "provider-aws-s3"}],
            "nodeRoleNames": ["eks-nodes-a"]
        }})),
        &permissive(),
    )
    .expect("ok")
    .iam
    .expect("iam");
    assert_eq!(iam.role_name, "team-a-pull");
    assert_eq!(
        iam.trust,
        Trust::Irsa {
            oidc_provider: "oidc.eks.eu-west-2.amazonaws.com/id/ABC".into()
        }
    );
    assert_eq!(iam.service_accounts[0].name, "provider-aws-s3");
    assert_eq!(iam.node_role_names, ["eks-nodes-a"]);
}

#[test]
fn only_the_input_can_turn_iam_on() {
    let cases = [
        (json!({}), json!({}), true),
        (json!({"enabled": false}), json!({}), false),
        (json!({}), json!({"enabled": false}), false),
        (json!({"enabled": true}), json!({"enabled": false}), false),
        (json!({"enabled": true}), json!({}), true),
    ];
    for (xr, platform, enabled) in cases {
        let s = Settings::new(
            XrRef::named("demo"),
            &spec(json!({"iam": xr})),
            &input(json!({"iam": platform})),
        )
        .expect("ok");
        assert_eq!(s.iam.is_some(), enabled, "xr {xr} input {platform}");
    }
}

/// Every XR value outside its allowlist, or set where the allowlist is
/// empty, is refused naming the XR field and the allowlist.
#[test]
fn refusals_name_the_field_and_the_allowlist() {
    // The XR's iam, the field refused under the permissive input and
    // under the empty one (which refuses the first value it meets).
    let cases = [
        (
            json!({"roleName": "admin"}),
            "spec.iam.roleName",
            "spec.iam.roleName",
            "iam.allowedRoleNames",
        ),
        (
            json!({"oidcProvider": "token.actions.githubusercontent.com"}),
            "spec.iam.oidcProvider",
            "spec.iam.oidcProvider",
            "iam.allowedOidcProviders",
        ),
        (
            json!({"serviceAccounts": [{"namespace": "crossplane-system", "name": "provider-a"}, {"namespace": "kube-system", "name": "provider-x"}]}),
            "spec.iam.serviceAccounts[1]",
            "spec.iam.serviceAccounts[0]",
            "iam.allowedServiceAccounts",
        ),
        (
            json!({"nodeRoleNames": ["eks-nodes-a", "OrganizationAdmin"]}),
            "spec.iam.nodeRoleNames[1]",
            "spec.iam.nodeRoleNames[0]",
            "iam.allowedNodeRoleNames",
        ),
    ];
    for (iam, permissive_field, empty_field, allowlist) in cases {
        for (policy, field, empty) in [
            (permissive(), permissive_field, false),
            (Input::default(), empty_field, true),
        ] {
            let err = Settings::new(
                XrRef::named("team-demo"),
                &spec(json!({"iam": iam})),
                &policy,
            )
            .unwrap_err();
            match &err {
                Error::Refused {
                    field: f,
                    allowlist: a,
                    message,
                } => {
                    assert_eq!((f.as_str(), a.as_str()), (field, allowlist), "{iam}");
                    assert_eq!(message.contains("allowlist is empty"), empty, "{err}");
                }
                other => panic!("{iam}: expected a refusal, got {other:?}"),
            }
        }
    }
    // A listed set of role names bounds the default name too.
    let err = Settings::new(
        XrRef::named("admin"),
        &spec(json!({})),
        &input(json!({"iam": {"allowedRoleNames": ["team-*"]}})),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("refused at spec.iam.roleName: \"admin-ecr-pull-"),
        "{err}"
    );
    // With IAM off in the input, IAM fields ask for nothing and pass.
    let s = Settings::new(
        XrRef::named("demo"),
        &spec(json!({"iam": {"roleName": "admin"}})),
        &input(json!({"iam": {"enabled": false}})),
    )
    .expect("ok");
    assert!(s.iam.is_none());
}

#[test]
fn bootstrap_trusts_the_platforms_own_xr() {
    let s = Settings::with_origin(
        XrRef::named("demo"),
        &spec(json!({"iam": {"roleName": "admin", "nodeRoleNames": ["nodes"]}})),
        &Input::default(),
        Origin::Platform,
    )
    .expect("ok");
    assert_eq!(s.iam.expect("iam").role_name, "admin");
}

#[test]
fn iam_errors_name_the_field() {
    let err = Settings::new(
        XrRef::named("demo"),
        &spec(json!({"iam": {"identity": "IRSA"}})),
        &input(json!({"iam": {"allowedIdentities": ["IRSA"]}})),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidSpec { field, .. } if field == "spec.iam.oidcProvider"),
        "{err}"
    );
    let err = Settings::new(
        XrRef::named("demo"),
        &spec(json!({"iam": {"roleName": "team-has space"}})),
        &permissive(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidSpec { field, .. } if field == "spec.iam.roleName"),
        "{err}"
    );
    let err = Settings::new(
        XrRef::named("demo"),
        &spec(json!({})),
        &input(json!({"mirrors": []})),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { field, .. } if field == "mirrors"),
        "{err}"
    );
}

/// `spec.upgrades.paused` is the XR's to set unless the input's
/// `upgrades.allowPause` is false; the input's `upgrades` is carried.
#[test]
fn pausing_is_the_xrs_unless_the_input_forbids_it() {
    // (XR's upgrades, input's upgrades, paused or refused)
    let cases = [
        (json!(null), json!({}), Some(false)),
        (json!({}), json!({}), Some(false)),
        (
            json!({"paused": false}),
            json!({"allowPause": false}),
            Some(false),
        ),
        (json!({"paused": true}), json!({}), Some(true)),
        (
            json!({"paused": true}),
            json!({"allowPause": true}),
            Some(true),
        ),
        (json!({"paused": true}), json!({"allowPause": false}), None),
    ];
    for (xr, platform, expected) in cases {
        let extra = if xr.is_null() {
            json!({})
        } else {
            json!({"upgrades": xr})
        };
        for origin in [Origin::Request, Origin::Platform] {
            let got = Settings::with_origin(
                XrRef::named("demo"),
                &spec(extra.clone()),
                &input(json!({"upgrades": platform})),
                origin,
            );
            match (got, expected) {
                (Ok(s), Some(paused)) => assert_eq!(s.paused, paused, "{xr} {platform}"),
                (Err(Error::InvalidSpec { field, message }), None) => {
                    assert_eq!(field, "spec.upgrades.paused");
                    assert!(
                        message.contains("the platform does not allow pausing upgrades (input upgrades.allowPause is false)"),
                        "{message}"
                    );
                }
                (got, _) => panic!("{xr} {platform} {origin:?}: {got:?}"),
            }
        }
    }
    let s = Settings::new(
        XrRef::named("demo"),
        &spec(json!({})),
        &input(json!({"upgrades": {"maxInFlight": 4, "windows": [{"days": ["Sat"], "start": "01:00", "duration": "2h"}]}})),
    )
    .expect("ok");
    assert_eq!(s.upgrades.max_in_flight, 4);
    assert_eq!(s.upgrades.windows.len(), 1);
    assert_eq!(
        Settings::new(XrRef::named("demo"), &spec(json!({})), &Input::default())
            .expect("ok")
            .upgrades,
        crate::spec::Upgrades::default()
    );
    // A typo inside spec.upgrades is refused, naming it.
    let err = XrSpec::from_composite(&json!({"spec": {
        "registry": {"accountId": "123456789012", "region": "eu-west-2"},
        "packages": [{"kind": "Provider", "repository": "upbound/provider-aws-s3", "version": "v2.2.0"}],
        "upgrades": {"pause": true}
    }}))
    .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidSpec { field, .. } if field == "spec.upgrades.pause"),
        "{err}"
    );
}

#[test]
fn mirrors_map_both_ways() {
    let s = Settings::new(
        XrRef::named("demo"),
        &spec(json!({})),
        &input(json!({"mirrors": [
            {"upstream": "xpkg.upbound.io/", "repositoryPrefix": ""},
            {"upstream": "xpkg.crossplane.io/", "repositoryPrefix": ""},
            {"upstream": "xpkg.upbound.io/upbound/", "repositoryPrefix": "mirror/upbound/"}
        ]})),
    )
    .expect("ok");
    let cases = [
        (
            "xpkg.upbound.io/upbound/provider-family-aws",
            Some("mirror/upbound/provider-family-aws"),
        ),
        (
            "xpkg.upbound.io/crossplane-contrib/provider-x",
            Some("crossplane-contrib/provider-x"),
        ),
        (
            "xpkg.crossplane.io/crossplane-contrib/function-go-templating",
            Some("crossplane-contrib/function-go-templating"),
        ),
        ("ghcr.io/someone/provider", None),
        ("upbound/provider-family-aws", None),
    ];
    for (path, repo) in cases {
        assert_eq!(
            s.repository_for(path).map(|(r, _)| r),
            repo.map(str::to_string),
            "{path}"
        );
    }
    assert_eq!(
        s.upstream_for("mirror/upbound/provider-aws-s3")
            .map(|(u, _)| u)
            .as_deref(),
        Some("xpkg.upbound.io/upbound/provider-aws-s3")
    );
    assert_eq!(
        s.upstream_for("upbound/provider-aws-s3")
            .map(|(u, _)| u)
            .as_deref(),
        Some("xpkg.upbound.io/upbound/provider-aws-s3")
    );
}
