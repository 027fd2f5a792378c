use super::*;
use crate::function::rollout::{Phase, Timestamp};
use crate::sdk::request::decode;
use crate::sdk::structs::json_to_value;
use crate::spec::Input;
use proptest::prelude::*;
use serde_json::json;

/// The status of `composite` read as a call reads it: `status.packages`
/// from the protobuf the request would hold.
fn read_status(composite: &Json, settings: &Settings) -> Previous {
    let packages = composite.pointer("/status/packages").map(json_to_value);
    Previous::read(composite, packages.as_ref(), settings)
}

proptest! {
    /// The protobuf form written to the XR is exactly the serde form it
    /// is read back through.
    #[test]
    fn status_entries_are_written_as_serde_reads_them(
        name in ".{0,12}",
        kind in prop_oneof![
            Just(PackageKind::Provider),
            Just(PackageKind::Function),
            Just(PackageKind::Configuration),
        ],
        repository in ".{0,12}",
        version in ".{0,8}",
        digest in ".{0,8}",
        package in ".{0,16}",
        depends_on in proptest::collection::vec(".{0,8}", 0..4),
        ready in any::<bool>(),
        leaving in any::<bool>(),
        shared_with in proptest::option::of(".{0,12}"),
        available in proptest::option::of(".{0,8}"),
        rollout in proptest::option::of((
            ".{0,12}",
            ".{0,12}",
            prop_oneof![Just(Phase::Pending), Just(Phase::Progressing), Just(Phase::RolledBack)],
            0u64..=253_402_300_799,
        )),
    ) {
        let rollout = rollout.map(|(from, to, phase, since)| Rollout {
            from, to, phase, since: Timestamp::from_secs(since),
        });
        let status = PackageStatus {
            name, kind, repository, version, digest, package, depends_on, ready, leaving,
            shared_with, rollout, available, skipped: Vec::new(),
        };
        let serde = serde_json::to_value(&status).expect("serializes");
        prop_assert_eq!(status.to_value(), json_to_value(&serde));
        let back: PackageStatus = serde_json::from_value(serde).expect("reads back");
        prop_assert_eq!(back, status);
    }
}

const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const HOST: &str = "123456789012.dkr.ecr.eu-west-2.amazonaws.com";

fn settings(strategy: &str, input: Json) -> (Settings, XrSpec) {
    let spec: XrSpec = decode(json!({
        "registry": {"accountId": "123456789012", "region": "eu-west-2"},
        "packages": [{"kind": "Provider", "repository": "upbound/provider-aws-s3", "version": "v2.2.0", "runtimeConfigName": "rc"}],
        "strategy": strategy
    }))
    .expect("spec");
    let input: Input = decode(input).expect("input");
    let settings = crate::spec::Settings::with_origin(
        crate::spec::xr::XrRef::named("demo"),
        &spec,
        &input,
        crate::spec::policy::Origin::Platform,
    )
    .expect("settings");
    (settings, spec)
}

fn entry(name: &str, repository: &str, package: &str, digest: &str, deps: &[&str]) -> Json {
    json!({"name": name, "kind": "Provider", "repository": repository, "version": "v2.2.0",
           "digest": digest, "package": package, "dependsOn": deps, "ready": true})
}

fn family(package: &str) -> Json {
    entry(
        "upbound-provider-family-aws",
        "upbound/provider-family-aws",
        package,
        A,
        &[],
    )
}

fn s3() -> Json {
    entry(
        "upbound-provider-aws-s3",
        "upbound/provider-aws-s3",
        "xpkg.upbound.io/upbound/provider-aws-s3:v2.2.0",
        B,
        &["upbound-provider-family-aws"],
    )
}

fn status(entries: Vec<Json>) -> Json {
    json!({"status": {
        "packages": entries,
        "conditions": [{"type": "Resolved", "status": "True", "reason": "Resolved", "message": "m"}]
    }})
}

#[test]
fn status_round_trips_into_a_graph() {
    for (strategy, package) in [
        (
            "Rewrite",
            "xpkg.upbound.io/upbound/provider-family-aws:v2.2.0",
        ),
        (
            "Skip",
            &*format!("{HOST}/upbound/provider-family-aws:v2.2.0"),
        ),
        (
            "Rewrite",
            &*format!("xpkg.upbound.io/upbound/provider-family-aws@{A}"),
        ),
    ] {
        let (settings, spec) = settings(strategy, json!({}));
        let previous = read_status(&status(vec![family(package), s3()]), &settings);
        assert_eq!(
            previous.condition("Resolved").map(|c| c.reason.as_str()),
            Some("Resolved")
        );
        let remembered = previous.remembered(&settings, &spec);
        assert!(remembered.ignored.is_empty(), "{:?}", remembered.ignored);
        let graph = remembered.graph().expect("graph");
        let family = graph.get("upbound/provider-family-aws").expect("family");
        assert_eq!(
            family.upstream, "xpkg.upbound.io/upbound/provider-family-aws",
            "{package}"
        );
        let s3 = graph.get("upbound/provider-aws-s3").expect("s3");
        assert_eq!(
            s3.depends_on.iter().collect::<Vec<_>>(),
            ["upbound/provider-family-aws"]
        );
        assert_eq!(s3.runtime_config_name.as_deref(), Some("rc"));
        assert_eq!(
            previous.dependencies()["package-upbound-provider-aws-s3"],
            vec!["package-upbound-provider-family-aws".to_string()]
        );
    }
}

/// A status as long as resolution writes and the XRDs admit is read
/// whole: what stands in for a registry that is down loses nothing.
#[test]
fn the_longest_status_written_is_read_whole() {
    let (settings, spec) = settings("Rewrite", json!({}));
    let digest = |i: usize| format!("sha256:{i:064x}");
    let entries: Vec<Json> = (0..MAX_STATUS_PACKAGES)
        .map(|i| {
            let repository = format!("upbound/provider-{i}");
            let package = format!("xpkg.upbound.io/{repository}:v2.2.0");
            entry(
                &format!("upbound-provider-{i}"),
                &repository,
                &package,
                &digest(i),
                &[],
            )
        })
        .collect();
    let previous = read_status(&status(entries.clone()), &settings);
    assert_eq!(previous.packages.len(), MAX_STATUS_PACKAGES);
    assert!(previous.unreadable.is_empty(), "{:?}", previous.unreadable);
    let remembered = previous.remembered(&settings, &spec);
    assert_eq!(remembered.nodes.len(), MAX_STATUS_PACKAGES);

    // One more than the XRDs admit was not written by this function.
    let mut longer = entries;
    longer.push(entry(
        "x",
        "upbound/x",
        "xpkg.upbound.io/upbound/x:v1",
        A,
        &[],
    ));
    let previous = read_status(&status(longer), &settings);
    assert_eq!(previous.packages.len(), MAX_STATUS_PACKAGES);
    assert!(previous.unreadable[0].contains("only the first 2048 of 2049"));
}

/// Every check fresh input passes, one tampered entry at a time; the
/// untouched entry survives each time.
#[test]
fn tampered_entries_are_ignored_with_a_reason() {
    type Tamper = fn(&mut Json);
    let cases: [(Tamper, &str); 11] = [
        (
            |e| e["repository"] = json!("*"),
            "not an ECR repository name",
        ),
        (
            |e| e["repository"] = json!("other/provider-family-aws"),
            "neither",
        ),
        (|e| e["name"] = json!("Not A Label"), "not a DNS label"),
        (|e| e["digest"] = json!("sha256:aa"), "not a sha256 digest"),
        (|e| e["digest"] = json!("md5:00"), "not a sha256 digest"),
        (|e| e["version"] = json!("v1 && rm -rf"), "neither a tag"),
        (
            |e| e["package"] = json!("evil.example.com/upbound/provider-family-aws:v2.2.0"),
            "neither",
        ),
        (
            |e| {
                e["package"] = json!(
                    "999999999999.dkr.ecr.eu-west-2.amazonaws.com/upbound/provider-family-aws:v2.2.0"
                )
            },
            "neither",
        ),
        (
            |e| e["package"] = json!("xpkg.upbound.io/upbound/provider-aws-iam:v2.2.0"),
            "neither",
        ),
        (|e| e["dependsOn"] = json!(["../x"]), "dependsOn"),
        (|e| e["name"] = json!("upbound-provider-aws-s3"), "repeats"),
    ];
    let (settings, spec) = settings("Rewrite", json!({}));
    for (tamper, why) in cases {
        let mut bad = family("xpkg.upbound.io/upbound/provider-family-aws:v2.2.0");
        tamper(&mut bad);
        let remembered =
            read_status(&status(vec![s3(), bad.clone()]), &settings).remembered(&settings, &spec);
        assert_eq!(
            remembered.nodes.keys().collect::<Vec<_>>(),
            ["upbound/provider-aws-s3"],
            "{bad}"
        );
        assert_eq!(remembered.ignored.len(), 1, "{bad}");
        assert!(
            remembered.ignored[0].contains(why),
            "{}",
            remembered.ignored[0]
        );
        assert!(remembered.ignored[0].starts_with("ignoring status.packages[1]"));
    }
}

#[test]
fn the_allowlist_applies_to_memory_too() {
    let (settings, spec) = settings(
        "Rewrite",
        json!({"allowedRepositories": ["upbound/provider-aws-*"]}),
    );
    let remembered = read_status(
        &status(vec![
            family("xpkg.upbound.io/upbound/provider-family-aws:v2.2.0"),
            s3(),
        ]),
        &settings,
    )
    .remembered(&settings, &spec);
    assert_eq!(remembered.nodes.len(), 1);
    assert!(remembered.ignored[0].contains("allowedRepositories"));
    // The dependency on an ignored entry is dropped with it.
    assert!(
        remembered.nodes["upbound/provider-aws-s3"]
            .depends_on
            .is_empty()
    );
}

#[test]
fn leaving_entries_order_removal_but_are_never_composed() {
    let (settings, spec) = settings("Rewrite", json!({}));
    let mut leaving = s3();
    leaving["leaving"] = json!(true);
    let previous = read_status(
        &status(vec![
            family("xpkg.upbound.io/upbound/provider-family-aws:v2.2.0"),
            leaving,
        ]),
        &settings,
    );
    assert!(previous.packages[1].leaving);
    let remembered = previous.remembered(&settings, &spec);
    assert_eq!(
        remembered.nodes.keys().collect::<Vec<_>>(),
        ["upbound/provider-family-aws"]
    );
    assert_eq!(
        previous.dependencies()["package-upbound-provider-aws-s3"],
        ["package-upbound-provider-family-aws"]
    );
}

#[test]
fn foreign_status_is_no_memory() {
    let (settings, _) = settings("Rewrite", json!({}));
    for composite in [
        json!({}),
        json!({"status": {"packages": "x"}}),
        json!({"status": {"packages": [{"name": 1}]}}),
    ] {
        assert_eq!(read_status(&composite, &settings).packages, vec![]);
    }
    let previous = read_status(
        &json!({"status": {"packages": [{"name": 1}, s3()]}}),
        &settings,
    );
    assert_eq!(previous.packages.len(), 1);
    assert!(
        previous.unreadable[0].starts_with("ignoring status.packages[0]: "),
        "{}",
        previous.unreadable[0]
    );
}

/// Leaving entries are never composed, but they drive lookups (their
/// objects are asked for by kind and name), hold removals back and are
/// written back: each is checked as it is read, like any other.
#[test]
fn every_entry_leaving_or_not_is_checked_as_it_is_read() {
    type Tamper = fn(&mut Json);
    let cases: Vec<(Tamper, &str)> = vec![
        (|e| e["name"] = json!("Not A Label"), "not a DNS label"),
        (|e| e["name"] = json!("../../x"), "not a DNS label"),
        (
            |e| e["repository"] = json!("*"),
            "not an ECR repository name",
        ),
        (
            |e| e["repository"] = json!("evil/provider-x"),
            "not in the input's allowedRepositories",
        ),
        (|e| e["dependsOn"] = json!(["Not/A/Label"]), "dependsOn"),
        (|e| e["kind"] = json!("ClusterRole"), "unknown variant"),
        (
            |e| e["name"] = json!("x".repeat(64)),
            "name must be at most 63",
        ),
        (
            |e| e["repository"] = json!(format!("upbound/{}", "x".repeat(300))),
            "repository must be at most 256",
        ),
        (
            |e| e["version"] = json!("v".repeat(257)),
            "version must be at most 256",
        ),
        (
            |e| e["digest"] = json!("d".repeat(129)),
            "digest must be at most 128",
        ),
        (
            |e| e["package"] = json!("p".repeat(1025)),
            "package must be at most 1024",
        ),
        (
            |e| e["dependsOn"] = json!(vec!["a"; MAX_STATUS_PACKAGES + 1]),
            "dependsOn must have at most 2048 items",
        ),
        (
            |e| e["sharedWith"] = json!("s".repeat(513)),
            "sharedWith must be at most 512",
        ),
    ];
    let (settings, _) = settings("Rewrite", json!({"allowedRepositories": ["upbound/*"]}));
    for leaving in [true, false] {
        for (tamper, why) in &cases {
            let mut bad = s3();
            bad["leaving"] = json!(leaving);
            tamper(&mut bad);
            let previous = read_status(
                &status(vec![
                    family("xpkg.upbound.io/upbound/provider-family-aws:v2.2.0"),
                    bad.clone(),
                ]),
                &settings,
            );
            assert_eq!(
                previous
                    .packages
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>(),
                ["upbound-provider-family-aws"],
                "{bad}"
            );
            assert_eq!(previous.unreadable.len(), 1, "{bad}");
            let message = &previous.unreadable[0];
            assert!(
                message.starts_with("ignoring status.packages[1]"),
                "{message}"
            );
            assert!(message.contains(why), "{why}: {message}");
            assert!(message.len() < 400, "{message}");
        }
    }
}

/// A status value reaches a Warning as a short, quoted excerpt at most,
/// whatever its size.
#[test]
fn messages_quote_at_most_an_excerpt() {
    let (settings, spec) = settings("Rewrite", json!({}));
    let huge = "Z".repeat(1 << 20);
    let mut bad_name = s3();
    bad_name["name"] = json!(format!("a{huge}"));
    let mut bad_type = s3();
    bad_type["ready"] = json!(huge.clone());
    let mut bad_package = s3();
    bad_package["package"] = json!(format!("evil.example.com/{}", "z".repeat(1000)));
    let mut bad_version = s3();
    bad_version["version"] = json!(format!("v1 {}", "z".repeat(250)));
    for bad in [bad_name, bad_type, bad_package, bad_version] {
        let previous = read_status(&status(vec![bad]), &settings);
        let ignored = previous.remembered(&settings, &spec).ignored;
        assert_eq!(ignored.len(), 1, "{ignored:?}");
        assert!(ignored[0].len() < 600, "{} bytes", ignored[0].len());
        assert!(ignored[0].contains('…'), "{}", ignored[0]);
    }
    assert_eq!(excerpt("héllo", 2), "hé…");
    assert_eq!(excerpt("hé", 2), "hé");
    assert_eq!(quoted("a\"b"), "\"a\\\"b\"");
}
