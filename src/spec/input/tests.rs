use super::*;
use crate::sdk::request::decode;
use serde_json::json;

#[test]
fn defaults_when_empty() {
    let input: Input =
        decode(json!({"apiVersion": "ecr.fn.crossplane.io/v1beta1", "kind": "Input"}))
            .expect("valid");
    assert_eq!(input.mirrors, Input::default().mirrors);
    assert_eq!(input.mirrors[0].upstream, "xpkg.upbound.io/");
    assert_eq!(input.mirrors[1].upstream, "xpkg.crossplane.io/");
    assert!(input.resolve_dependencies);
    assert!(!input.pin_digests);
    assert!(input.iam.enabled);
    assert_eq!(input.iam.provider_config_name, "default");
    assert_eq!(input.ttl, Duration::from_secs(60));
    assert_eq!(input.credentials_name, "aws-credentials");
    assert_eq!(input.revision_history_limit.get(), 1);
    assert_eq!(input.upgrades, Upgrades::default());
}

#[test]
fn reads_every_field() {
    let input: Input = decode(json!({
        "strategy": "Skip",
        "mirrors": [{"upstream": "xpkg.upbound.io/", "repositoryPrefix": "mirror/"}],
        "resolveDependencies": false,
        "pinDigests": true,
        "allowedRepositories": ["upbound/*"],
        "iam": {"enabled": false, "roleName": "r", "identity": "PodIdentity", "managedResources": "Namespaced", "providerConfigName": "aws", "namespace": "infra"},
        "ttl": "2m",
        "tagCacheTTL": "30s",
        "credentialsName": "creds",
        "revisionHistoryLimit": 3
    }))
    .expect("valid");
    assert_eq!(input.strategy, Some(Strategy::Skip));
    assert_eq!(input.mirrors[0].repository_prefix, "mirror/");
    assert!(!input.resolve_dependencies && input.pin_digests);
    assert_eq!(input.iam.managed_resources, ManagedResources::Namespaced);
    assert_eq!(input.revision_history_limit.get(), 3);
    assert_eq!(input.iam.identity, Some(Identity::PodIdentity));
    assert_eq!(input.ttl, Duration::from_secs(120));
    assert_eq!(input.tag_cache_ttl, Duration::from_secs(30));
}

#[test]
fn errors_name_the_field() {
    let cases = [
        (json!({"ttl": "soon"}), "ttl"),
        (
            json!({"mirrors": [{"upstream": "x/", "prefix": ""}]}),
            "mirrors[0].prefix",
        ),
        (
            json!({"iam": {"managedResources": "Both"}}),
            "iam.managedResources",
        ),
        (json!({"pinDigest": true}), "pinDigest"),
    ];
    for (input, field) in cases {
        let err = decode::<Input>(input.clone()).unwrap_err();
        assert_eq!(err.path, field, "{input}: {}", err.message);
    }
}

/// Every bound is checked as the value is decoded, names the field and
/// says the limit, whatever the size of the value.
#[test]
fn bounds_name_the_field() {
    let long = |n: usize| "x".repeat(n);
    let cases = [
        (json!({"ttl": "48h"}), "ttl", "above the maximum of 24h0m0s"),
        (json!({"ttl": "99999999999h"}), "ttl", "Go's maximum"),
        (
            json!({"tagCacheTTL": "1".repeat(1 << 20)}),
            "tagCacheTTL",
            "at most 32 characters, got 1048576",
        ),
        (json!({"tagCacheTTL": "-1m"}), "tagCacheTTL", "negative"),
        (json!({"kind": long(64)}), "kind", "at most 63 characters"),
        (
            json!({"apiVersion": long(254)}),
            "apiVersion",
            "at most 253 characters",
        ),
        (
            json!({"mirrors": vec![json!({"upstream": "x/"}); 33]}),
            "mirrors",
            "at most 32 items, got 33",
        ),
        (
            json!({"mirrors": [{"upstream": long(257)}]}),
            "mirrors[0].upstream",
            "at most 256 characters",
        ),
        (
            json!({"mirrors": [{"upstream": "x/", "repositoryPrefix": long(257)}]}),
            "mirrors[0].repositoryPrefix",
            "at most 256 characters",
        ),
        (
            json!({"allowedRepositories": vec!["x"; 129]}),
            "allowedRepositories",
            "at most 128 items",
        ),
        (
            json!({"revisionHistoryLimit": 0}),
            "revisionHistoryLimit",
            "an integer from 1 to 10, got 0",
        ),
        (
            json!({"revisionHistoryLimit": 11}),
            "revisionHistoryLimit",
            "an integer from 1 to 10, got 11",
        ),
        (
            json!({"revisionHistoryLimit": -1}),
            "revisionHistoryLimit",
            "invalid value",
        ),
        (
            json!({"revisionHistoryLimit": 1.5}),
            "revisionHistoryLimit",
            "invalid type",
        ),
        (
            json!({"allowedRepositories": ["x", long(513)]}),
            "allowedRepositories[1]",
            "at most 512 characters",
        ),
        (
            json!({"allowedRuntimeConfigs": [long(513)]}),
            "allowedRuntimeConfigs[0]",
            "at most 512 characters",
        ),
        (
            json!({"allowedRegistries": vec![json!({"accountId": "*", "region": "*"}); 129]}),
            "allowedRegistries",
            "at most 128 items",
        ),
        (
            json!({"allowedRegistries": [{"accountId": "*", "region": long(33)}]}),
            "allowedRegistries[0].region",
            "at most 32 characters",
        ),
        (
            json!({"allowedRegistries": [{"accountId": long(33), "region": "*"}]}),
            "allowedRegistries[0].accountId",
            "at most 32 characters",
        ),
        (
            json!({"iam": {"roleName": long(65)}}),
            "iam.roleName",
            "at most 64 characters",
        ),
        (
            json!({"iam": {"oidcProvider": long(513)}}),
            "iam.oidcProvider",
            "at most 512 characters",
        ),
    ];
    check_bounds(&cases);
}

/// The upgrade policy's bounds name their path inside the input.
#[test]
fn upgrades_bounds_name_their_path() {
    let cases = [
        (
            json!({"upgrades": {"windows": [
                {"days": ["Mon"], "start": "01:00", "duration": "1h"},
                {"days": ["Tue"], "start": "01:00", "duration": "1h"},
                {"days": ["Wed"], "start": "25:00", "duration": "1h"}
            ]}}),
            "upgrades.windows[2].start",
            "HH:MM from 00:00 to 23:59",
        ),
        (
            json!({"upgrades": {"progressDeadline": "1m", "healthyGrace": "2m"}}),
            "upgrades",
            "healthyGrace (2m0s) must not be longer than progressDeadline (1m0s)",
        ),
        (
            json!({"upgrades": {"maxInFlight": 0}}),
            "upgrades.maxInFlight",
            "an integer from 1 to 100, got 0",
        ),
    ];
    check_bounds(&cases);
}

#[test]
fn values_at_the_limits_are_accepted() {
    let at_limit: Input = decode(
        json!({"ttl": "24h", "tagCacheTTL": "0", "mirrors": vec![json!({"upstream": "x/"}); 32]}),
    )
    .expect("at the limits");
    assert_eq!(at_limit.ttl, MAX_DURATION);
}

/// The same, for the other half of the input's fields.
#[test]
fn more_bounds_name_the_field() {
    let long = |n: usize| "x".repeat(n);
    let cases = [
        (
            json!({"iam": {"roleNamePrefix": long(54)}}),
            "iam.roleNamePrefix",
            "at most 53 characters",
        ),
        (
            json!({"iam": {"roleNamePrefix": "team a"}}),
            "iam.roleNamePrefix",
            "IAM role name characters",
        ),
        (
            json!({"iam": {"allowedIdentities": ["IRSA", "PodIdentity", "IRSA"]}}),
            "iam.allowedIdentities",
            "at most 2 items",
        ),
        (
            json!({"iam": {"allowedIdentities": ["Admin"]}}),
            "iam.allowedIdentities[0]",
            "unknown variant",
        ),
        (
            json!({"iam": {"clusterArn": long(257)}}),
            "iam.clusterArn",
            "at most 256 characters",
        ),
        (
            json!({"iam": {"clusterArn": "arn:aws:iam::123456789012:role/x"}}),
            "iam.clusterArn",
            "must be an EKS cluster ARN",
        ),
        (
            json!({"iam": {"serviceAccounts": vec![json!({"namespace": "n", "name": "a"}); 33]}}),
            "iam.serviceAccounts",
            "at most 32 items",
        ),
        (
            json!({"iam": {"serviceAccounts": [{"namespace": long(64), "name": "a"}]}}),
            "iam.serviceAccounts[0].namespace",
            "at most 63 characters",
        ),
        (
            json!({"iam": {"nodeRoleNames": vec!["r"; 33]}}),
            "iam.nodeRoleNames",
            "at most 32 items",
        ),
        (
            json!({"iam": {"nodeRoleNames": [long(65)]}}),
            "iam.nodeRoleNames[0]",
            "at most 64 characters",
        ),
        (
            json!({"iam": {"allowedRoleNames": [long(513)]}}),
            "iam.allowedRoleNames[0]",
            "at most 512 characters",
        ),
        (
            json!({"iam": {"allowedNodeRoleNames": vec!["r"; 129]}}),
            "iam.allowedNodeRoleNames",
            "at most 128 items",
        ),
        (
            json!({"iam": {"allowedOidcProviders": [long(513)]}}),
            "iam.allowedOidcProviders[0]",
            "at most 512 characters",
        ),
        (
            json!({"iam": {"allowedServiceAccounts": [{"namespace": "*", "name": long(513)}]}}),
            "iam.allowedServiceAccounts[0].name",
            "at most 512 characters",
        ),
        (
            json!({"iam": {"providerConfigName": long(254)}}),
            "iam.providerConfigName",
            "at most 253 characters",
        ),
        (
            json!({"iam": {"namespace": long(64)}}),
            "iam.namespace",
            "at most 63 characters",
        ),
        (
            json!({"credentialsName": long(254)}),
            "credentialsName",
            "at most 253 characters",
        ),
    ];
    check_bounds(&cases);
}

/// Each case: an input, the field its error must name, and text the
/// message must contain.
fn check_bounds(cases: &[(Json, &str, &str)]) {
    for (input, field, message) in cases {
        let err = decode::<Input>(input.clone()).unwrap_err();
        assert_eq!(err.path, *field, "{}", err.message);
        assert!(err.message.contains(message), "{field}: {}", err.message);
    }
}

/// `verify`'s bounds, as [`the_package_crd_declares_the_bounds`] checks.
const VERIFY_BOUNDS: &[(&str, usize)] = &[
    ("verify.authorities[]", MAX_AUTHORITIES),
    ("verify.authorities[].name", MAX_AUTHORITY_NAME_LEN),
    ("verify.authorities[].repositories[]", MAX_ALLOWLIST_ITEMS),
    ("verify.authorities[].repositories[]item", MAX_PATTERN_LEN),
    ("verify.authorities[].key.publicKey", MAX_PUBLIC_KEY_PEM_LEN),
    (
        "verify.authorities[].keyless.trustedRoot",
        MAX_TRUSTED_ROOT_LEN,
    ),
    (
        "verify.authorities[].keyless.identities[]",
        MAX_KEYLESS_IDENTITIES,
    ),
    (
        "verify.authorities[].keyless.identities[].issuer",
        MAX_IDENTITY_LEN,
    ),
    (
        "verify.authorities[].keyless.identities[].subject",
        MAX_IDENTITY_LEN,
    ),
    (
        "verify.authorities[].keyless.identities[].subjectRegExp",
        MAX_IDENTITY_LEN,
    ),
    ("verify.crossplaneNamespace", MAX_NAMESPACE_LEN),
];

/// The CRD declares a bound on every string and list, the same as the
/// function enforces.
#[test]
fn the_package_crd_declares_the_bounds() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/package/input/ecr.fn.crossplane.io_inputs.yaml"
    );
    let crd: Json =
        serde_norway::from_str(&std::fs::read_to_string(path).expect("crd")).expect("yaml");
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let declared = limits::declared_bounds(schema);
    let expected = [
        ("apiVersion", MAX_API_VERSION_LEN),
        ("kind", MAX_KIND_LEN),
        ("strategy", MAX_ENUM_LEN),
        ("mirrors[]", MAX_MIRRORS),
        ("mirrors[].upstream", MAX_UPSTREAM_LEN),
        ("mirrors[].repositoryPrefix", MAX_REPOSITORY_PREFIX_LEN),
        ("allowedRepositories[]", MAX_ALLOWLIST_ITEMS),
        ("allowedRepositories[]item", MAX_PATTERN_LEN),
        ("allowedRegistries[]", MAX_ALLOWLIST_ITEMS),
        ("allowedRegistries[].accountId", MAX_REGISTRY_PATTERN_LEN),
        ("allowedRegistries[].region", MAX_REGISTRY_PATTERN_LEN),
        ("allowedRuntimeConfigs[]", MAX_ALLOWLIST_ITEMS),
        ("allowedRuntimeConfigs[]item", MAX_PATTERN_LEN),
        ("iam.roleName", MAX_ROLE_NAME_LEN),
        ("iam.roleNamePrefix", MAX_ROLE_NAME_PREFIX_LEN),
        ("iam.identity", MAX_ENUM_LEN),
        ("iam.allowedIdentities[]", MAX_IDENTITIES),
        ("iam.allowedIdentities[]item", MAX_ENUM_LEN),
        ("iam.clusterArn", MAX_CLUSTER_ARN_LEN),
        ("iam.oidcProvider", MAX_OIDC_PROVIDER_LEN),
        ("iam.serviceAccounts[]", MAX_SERVICE_ACCOUNTS),
        ("iam.serviceAccounts[].namespace", MAX_NAMESPACE_LEN),
        ("iam.serviceAccounts[].name", MAX_SERVICE_ACCOUNT_NAME_LEN),
        ("iam.nodeRoleNames[]", MAX_NODE_ROLES),
        ("iam.nodeRoleNames[]item", MAX_ROLE_NAME_LEN),
        ("iam.allowedRoleNames[]", MAX_ALLOWLIST_ITEMS),
        ("iam.allowedRoleNames[]item", MAX_PATTERN_LEN),
        ("iam.allowedNodeRoleNames[]", MAX_ALLOWLIST_ITEMS),
        ("iam.allowedNodeRoleNames[]item", MAX_PATTERN_LEN),
        ("iam.allowedOidcProviders[]", MAX_ALLOWLIST_ITEMS),
        ("iam.allowedOidcProviders[]item", MAX_PATTERN_LEN),
        ("iam.allowedServiceAccounts[]", MAX_ALLOWLIST_ITEMS),
        ("iam.allowedServiceAccounts[].namespace", MAX_PATTERN_LEN),
        ("iam.allowedServiceAccounts[].name", MAX_PATTERN_LEN),
        ("iam.managedResources", MAX_ENUM_LEN),
        ("iam.providerConfigName", MAX_OBJECT_NAME_LEN),
        ("iam.namespace", MAX_NAMESPACE_LEN),
        ("ttl", MAX_DURATION_TEXT_LEN),
        ("tagCacheTTL", MAX_DURATION_TEXT_LEN),
        ("credentialsName", MAX_OBJECT_NAME_LEN),
        ("registryHost", MAX_REGISTRY_HOST_LEN),
        ("upgrades.progressDeadline", MAX_DURATION_TEXT_LEN),
        ("upgrades.healthyGrace", MAX_DURATION_TEXT_LEN),
        ("upgrades.quarantine", MAX_DURATION_TEXT_LEN),
        ("upgrades.windows[]", MAX_WINDOWS),
        ("upgrades.windows[].days[]", MAX_WINDOW_DAYS),
        ("upgrades.windows[].days[]item", MAX_ENUM_LEN),
        ("upgrades.windows[].start", MAX_WINDOW_START_LEN),
        ("upgrades.windows[].duration", MAX_DURATION_TEXT_LEN),
        ("packagePullPolicy", MAX_ENUM_LEN),
        ("allowedActivations[]", MAX_ALLOWLIST_ITEMS),
        ("allowedActivations[]item", MAX_PATTERN_LEN),
        ("scan.repositories[]", MAX_ALLOWLIST_ITEMS),
        ("scan.repositories[]item", MAX_PATTERN_LEN),
        ("scan.maxSeverity", MAX_ENUM_LEN),
        ("scan.ignore[]", MAX_SCAN_IGNORE),
        ("scan.ignore[]item", MAX_FINDING_NAME_LEN),
        ("scan.whenMissing", MAX_ENUM_LEN),
        (
            "crossplaneVersion",
            super::super::crossplane::MAX_CROSSPLANE_VERSION_LEN,
        ),
    ];
    let expected: std::collections::BTreeMap<String, usize> = expected
        .iter()
        .chain(VERIFY_BOUNDS)
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    assert_eq!(declared, Ok(expected));
}

#[test]
fn cluster_arns() {
    for (arn, account) in [
        (
            "arn:aws:eks:eu-west-2:111122223333:cluster/prod",
            "111122223333",
        ),
        (
            "arn:aws-us-gov:eks:us-gov-west-1:444455556666:cluster/Gov_1-a",
            "444455556666",
        ),
        (
            "arn:aws-cn:eks:cn-north-1:777788889999:cluster/c",
            "777788889999",
        ),
    ] {
        let parsed = ClusterArn::parse(arn).expect(arn);
        assert_eq!((parsed.as_str(), parsed.account_id()), (arn, account));
    }
    let hundred = format!(
        "arn:aws:eks:eu-west-2:111122223333:cluster/{}",
        "c".repeat(100)
    );
    assert!(ClusterArn::parse(&hundred).is_ok());
    for bad in [
        "",
        "arn:aws:eks:eu-west-2:111122223333:cluster/",
        "arn:aws:eks:eu-west-2:111122223333:cluster/-prod",
        "arn:aws:eks:eu-west-2:111122223333:cluster/a/b",
        "arn:aws:eks:eu-west-2:111122223333:cluster/a b",
        "arn:aws:eks:eu-west-2:111122223333:nodegroup/prod",
        "arn:aws:eks:eu-west-2:11112222333:cluster/prod",
        "arn:aws:eks:eu-west-2:*:cluster/prod",
        "arn:aws:eks:Europe:111122223333:cluster/prod",
        "arn:aws:iam::111122223333:cluster/prod",
        "arn:gcp:eks:eu-west-2:111122223333:cluster/prod",
        "arn:aws-:eks:eu-west-2:111122223333:cluster/prod",
        "arn:aws:eks:eu-west-2:111122223333",
        &format!(
            "arn:aws:eks:eu-west-2:111122223333:cluster/{}",
            "c".repeat(101)
        ),
    ] {
        let err = ClusterArn::parse(bad).expect_err(bad);
        assert!(bad.is_empty() || !err.contains(bad), "{bad:?}: {err}");
    }
}

#[test]
fn registry_hosts() {
    let registry = RegistryRef::new("111122223333", "eu-west-2");
    for (template, host) in [
        ("127.0.0.1:5443", "127.0.0.1:5443"),
        ("ecr-proxy.internal", "ecr-proxy.internal"),
        (
            "{accountId}.dkr-ecr.{region}.on.aws",
            "111122223333.dkr-ecr.eu-west-2.on.aws",
        ),
    ] {
        let parsed = RegistryHost::parse(template).expect(template);
        assert_eq!(parsed.for_registry(&registry), host, "{template}");
    }
    for bad in [
        "",
        "https://ecr.example.com",
        "ecr.example.com/path",
        "ECR.example.com",
        "ecr.example.com:0",
        "ecr.example.com:65536",
        "ecr.example.com:08443",
        "ecr..example.com",
        "-ecr.example.com",
        "{account}.example.com",
        "[::1]:5000",
    ] {
        assert!(RegistryHost::parse(bad).is_err(), "{bad:?} was accepted");
    }
    let decoded: Result<Input, _> = serde_json::from_value(json!({"registryHost": "a b"}));
    assert!(decoded.is_err());
}

/// The CRD shipped in the package must describe exactly what the
/// function reads: a field in one but not the other is a silent trap.
#[test]
fn the_package_crd_matches_the_input() {
    let schema = &package_crd_schema();
    let keys = |v: &Json| -> Vec<String> {
        let mut k: Vec<String> = v
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        k.sort();
        k
    };
    let full = json!({
        "apiVersion": "ecr.fn.crossplane.io/v1beta1", "kind": "Input", "metadata": {"name": "x"},
        "strategy": "Skip",
        "mirrors": [{"upstream": "xpkg.upbound.io/", "repositoryPrefix": "m/"}],
        "resolveDependencies": true, "pinDigests": true, "adoptExisting": false, "allowedRepositories": ["upbound/*"],
        "allowedRegistries": [{"accountId": "123456789012", "region": "*"}],
        "allowedRuntimeConfigs": ["team-*"],
        "activation": {"enabled": false}, "allowedActivations": ["*.s3.aws.upbound.io"],
        "iam": {"enabled": true, "roleName": "r", "roleNamePrefix": "platform", "identity": "IRSA", "managedResources": "Namespaced", "providerConfigName": "p", "namespace": "n",
                "allowedIdentities": ["IRSA", "PodIdentity"], "clusterArn": "arn:aws:eks:eu-west-2:123456789012:cluster/prod",
                "oidcProvider": "oidc.eks.eu-west-2.amazonaws.com/id/A", "serviceAccounts": [{"namespace": "crossplane-system", "name": "crossplane"}],
                "nodeRoleNames": ["nodes"], "allowedRoleNames": ["team-*"], "allowedNodeRoleNames": ["nodes-*"],
                "allowedOidcProviders": ["oidc.eks.*.amazonaws.com/id/*"],
                "allowedServiceAccounts": [{"namespace": "crossplane-system", "name": "provider-*"}]},
        "ttl": "1m", "tagCacheTTL": "1m", "credentialsName": "c",
        "registryHost": "{accountId}.dkr-ecr.{region}.on.aws",
        "revisionHistoryLimit": 2,
        "packagePullPolicy": "Always", "commonLabels": {"team": "core"}, "ignoreCrossplaneConstraints": true,
        "crossplaneVersion": "v2.2",
        "upgrades": {"maxInFlight": 2, "progressDeadline": "15m", "healthyGrace": "3m", "quarantine": "48h", "allowPause": false,
                     "windows": [{"days": ["Sat", "Sun"], "start": "02:00", "duration": "4h"}]},
        "scan": {"repositories": ["upbound/*"], "maxSeverity": "HIGH", "ignore": ["CVE-2024-1234"], "whenMissing": "Allow"},
        "verify": {"authorities": [{"name": "platform", "repositories": ["upbound/*"], "key": {"publicKey": crate::signature::fixtures::PEM}},
                                   {"name": "ci", "repositories": ["upbound/*"], "keyless": {"trustedRoot": r#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}"#,
                                    "identities": [{"issuer": "https://token.actions.githubusercontent.com", "subject": "https://github.com/o/r/.github/workflows/w.yaml@refs/heads/main"},
                                                   {"issuer": "https://accounts.google.com", "subjectRegExp": "@example\\.com$"}]}}],
                   "composeImageConfig": true, "crossplaneNamespace": "crossplane-system"}
    });
    decode::<Input>(full.clone()).expect("the function reads every field");
    assert_eq!(keys(&schema["properties"]), keys(&full));
    assert_eq!(
        keys(&schema["properties"]["iam"]["properties"]),
        keys(&full["iam"])
    );
    assert_eq!(
        keys(&schema["properties"]["mirrors"]["items"]["properties"]),
        keys(&full["mirrors"][0])
    );
    assert_eq!(
        keys(&schema["properties"]["allowedRegistries"]["items"]["properties"]),
        keys(&full["allowedRegistries"][0])
    );
    assert_eq!(
        keys(&schema["properties"]["activation"]["properties"]),
        keys(&full["activation"])
    );
    let upgrades = &schema["properties"]["upgrades"];
    assert_eq!(keys(&upgrades["properties"]), keys(&full["upgrades"]));
    let scan = &schema["properties"]["scan"];
    assert_eq!(keys(&scan["properties"]), keys(&full["scan"]));
    assert_eq!(scan["required"], json!(["repositories", "maxSeverity"]));
    the_verify_crd_matches(&schema["properties"]["verify"], &full["verify"], &keys);
    assert_eq!(
        keys(&upgrades["properties"]["windows"]["items"]["properties"]),
        keys(&full["upgrades"]["windows"][0])
    );
    for list in ["serviceAccounts", "allowedServiceAccounts"] {
        assert_eq!(
            keys(&schema["properties"]["iam"]["properties"][list]["items"]["properties"]),
            keys(&full["iam"][list][0]),
            "{list}"
        );
    }
}

/// `verify`'s part of [`the_package_crd_matches_the_input`]: an authority
/// is key or keyless, an identity has subject or subjectRegExp.
fn the_verify_crd_matches(verify: &Json, full: &Json, keys: &dyn Fn(&Json) -> Vec<String>) {
    assert_eq!(keys(&verify["properties"]), keys(full));
    let authority = &verify["properties"]["authorities"]["items"];
    let both = |list: &Json| -> Vec<String> {
        let mut k: Vec<String> = list
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(keys)
            .collect();
        k.sort();
        k.dedup();
        k
    };
    assert_eq!(keys(&authority["properties"]), both(&full["authorities"]));
    let keyless = &authority["properties"]["keyless"];
    let identities = &full["authorities"][1]["keyless"]["identities"];
    assert_eq!(
        keys(&keyless["properties"]),
        keys(&full["authorities"][1]["keyless"])
    );
    assert_eq!(
        keys(&keyless["properties"]["identities"]["items"]["properties"]),
        both(identities)
    );
    assert_eq!(
        keys(&authority["properties"]["key"]["properties"]),
        keys(&full["authorities"][0]["key"])
    );
}

/// The input CRD's OpenAPI schema, as the package ships it.
fn package_crd_schema() -> Json {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/package/input/ecr.fn.crossplane.io_inputs.yaml"
    );
    let crd: Json =
        serde_norway::from_str(&std::fs::read_to_string(path).expect("crd")).expect("yaml");
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// The CRD holds the numbers and grammars to what the function does.
#[test]
fn the_package_crd_declares_the_numbers_and_grammars() {
    let schema = &package_crd_schema();
    let upgrades = &schema["properties"]["upgrades"];
    let number = |v: &Json| v.as_u64().expect("a number");
    let max_in_flight = &upgrades["properties"]["maxInFlight"];
    assert_eq!(
        (
            number(&max_in_flight["minimum"]),
            number(&max_in_flight["maximum"])
        ),
        (1, u64::from(MAX_IN_FLIGHT))
    );
    let limit = &schema["properties"]["revisionHistoryLimit"];
    assert_eq!(
        (number(&limit["minimum"]), number(&limit["maximum"])),
        (1, u64::from(MAX_REVISION_HISTORY_LIMIT))
    );
    let window = &upgrades["properties"]["windows"]["items"];
    assert_eq!(window["properties"]["days"]["minItems"], json!(1));
    assert_eq!(
        window["properties"]["days"]["items"]["enum"],
        json!(crate::spec::Weekday::ALL.map(crate::spec::Weekday::as_str))
    );
    assert_eq!(window["required"], json!(["days", "start", "duration"]));
    assert_eq!(
        window["properties"]["start"]["pattern"],
        json!("^([01][0-9]|2[0-3]):[0-5][0-9]$")
    );
}

/// A bad trusted root or subject regex is one error naming its field.
#[test]
fn a_bad_keyless_authority_names_its_field() {
    let pem = crate::signature::fixtures::PEM;
    let root = r#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}"#;
    for (keyless, path) in [
        (
            json!({"trustedRoot": "{\"mediaType\": \"x\"}", "identities": [{"issuer": "i", "subject": "s"}]}),
            "verify.authorities[1].keyless.trustedRoot",
        ),
        (
            json!({"trustedRoot": root, "identities": [{"issuer": "i", "subject": "s"}, {"issuer": "i", "subjectRegExp": "a("}]}),
            "verify.authorities[1].keyless.identities[1].subjectRegExp",
        ),
    ] {
        let err = decode::<Input>(json!({"verify": {"authorities": [
            {"name": "platform", "repositories": ["*"], "key": {"publicKey": pem}},
            {"name": "ci", "repositories": ["*"], "keyless": keyless},
        ]}}))
        .unwrap_err();
        assert_eq!(err.path, path, "{}", err.message);
    }
}
