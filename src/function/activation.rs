//! Whether the definitions the XR's activation policy asks for are active
//! yet, read from the policy Crossplane reports on: its
//! `status.activated` names every definition it has activated, rebuilt on
//! each of Crossplane's reconciles of it (and whenever a definition
//! appears, so a package installed later is caught up).
//!
//! Until they are, what needs them is not ready (see `admission`): the
//! policy itself, for the IAM objects that wait on it, while an IAM
//! definition is missing; and a package, for its dependents and the XR,
//! while an entry of its `activate` matches nothing activated.

use std::collections::{BTreeMap, BTreeSet};

use crate::compose::activation::RESOURCE;
use crate::compose::iam;
use crate::compose::packages::package_resource_name;
use crate::function::observed::ObservedResources;
use crate::resolve::graph::Graph;
use crate::spec::Settings;

/// The composed resources whose definitions are not all active yet, and
/// the `activate` entries each still waits for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Inactive {
    pub pending: BTreeMap<String, Vec<String>>,
}

impl Inactive {
    /// What is not yet active for the policy (the IAM definitions) and for
    /// each package of `graph` that asked for definitions.
    pub fn read(settings: &Settings, graph: &Graph, observed: &ObservedResources) -> Self {
        let mut inactive = Self::default();
        let Some(activation) = &settings.activation else {
            return inactive;
        };
        let activated: BTreeSet<&str> = observed
            .get(RESOURCE)
            .map(|policy| policy.strings(&["status", "activated"]))
            .unwrap_or_default()
            .into_iter()
            .collect();
        if let Some(iam) = &settings.iam {
            let missing: Vec<String> = iam::definitions(iam)
                .into_iter()
                .filter(|d| !activated.contains(d.as_str()))
                .collect();
            inactive.note(RESOURCE.to_string(), missing);
        }
        for node in graph.nodes() {
            let Some(requested) = activation.requested.get(&node.repository) else {
                continue;
            };
            let missing = requested
                .iter()
                .filter(|entry| !activated.iter().any(|name| entry.matches(name)))
                .map(|entry| entry.pattern())
                .collect();
            inactive.note(package_resource_name(&node.name), missing);
        }
        inactive
    }

    fn note(&mut self, resource: String, missing: Vec<String>) {
        if !missing.is_empty() {
            self.pending.insert(resource, missing);
        }
    }

    /// The composition resource names that are not ready for anything.
    pub fn resources(&self) -> BTreeSet<String> {
        self.pending.keys().cloned().collect()
    }

    /// The entries `resource` still waits for, if any.
    pub fn of(&self, resource: &str) -> Option<&[String]> {
        self.pending.get(resource).map(Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::function::observed::observe;
    use crate::package::PackageKind;
    use crate::resolve::graph::PackageNode;
    use crate::spec::Input;
    use crate::spec::xr::{XrRef, XrSpec};
    use serde_json::{Value as Json, json};

    fn settings(activation: Json, activate: Json) -> Settings {
        let spec: XrSpec = serde_json::from_value(json!({
            "registry": {"accountId": "123456789012", "region": "us-east-1"},
            "packages": [{"kind": "Provider", "repository": "upbound/provider-aws-s3",
                          "version": "v2.2.0", "activate": activate}],
            "iam": {"enabled": true},
        }))
        .unwrap();
        let mut input = json!({"allowedActivations": ["*.aws.upbound.io"]});
        if !activation.is_null() {
            input["activation"] = activation;
        }
        let input: Input = serde_json::from_value(input).unwrap();
        Settings::new(XrRef::named("xr"), &spec, &input).unwrap()
    }

    fn graph() -> Graph {
        Graph::new([PackageNode {
            repository: "upbound/provider-aws-s3".to_string(),
            kind: PackageKind::Provider,
            upstream: "xpkg.upbound.io/upbound/provider-aws-s3".to_string(),
            name: "provider-aws-s3".to_string(),
            version: "v2.2.0".to_string(),
            digest: format!("sha256:{}", "a".repeat(64)),
            depends_on: BTreeSet::new(),
            runtime_config_name: None,
        }])
        .unwrap()
    }

    fn policy(activated: &[&str]) -> BTreeMap<String, Json> {
        BTreeMap::from([(
            RESOURCE.to_string(),
            json!({"apiVersion": "apiextensions.crossplane.io/v1alpha1",
                   "kind": "ManagedResourceActivationPolicy",
                   "status": {"activated": activated}}),
        )])
    }

    #[test]
    fn what_waits_for_which_definitions() {
        let s3 = package_resource_name("provider-aws-s3");
        let iam = [
            "roles.iam.aws.upbound.io",
            "policies.iam.aws.upbound.io",
            "rolepolicyattachments.iam.aws.upbound.io",
        ];
        // (case, what the policy reports activated, what still waits)
        type Waits<'a> = Vec<(&'a str, Vec<&'a str>)>;
        let cases: Vec<(&str, Vec<&str>, Waits)> = vec![
            (
                "no policy observed yet: everything waits",
                vec![],
                vec![
                    (RESOURCE, iam.to_vec()),
                    (
                        &s3,
                        vec!["*.s3.aws.upbound.io", "buckets.s3.aws.upbound.io"],
                    ),
                ],
            ),
            (
                "IAM active, the bucket not yet",
                iam.to_vec(),
                vec![(
                    &s3,
                    vec!["*.s3.aws.upbound.io", "buckets.s3.aws.upbound.io"],
                )],
            ),
            (
                "one IAM definition missing; a pattern matched by another",
                vec![
                    "roles.iam.aws.upbound.io",
                    "policies.iam.aws.upbound.io",
                    "objects.s3.aws.upbound.io",
                ],
                vec![
                    (RESOURCE, vec!["rolepolicyattachments.iam.aws.upbound.io"]),
                    (&s3, vec!["buckets.s3.aws.upbound.io"]),
                ],
            ),
            (
                "everything active",
                [iam.as_slice(), &["buckets.s3.aws.upbound.io"]].concat(),
                vec![],
            ),
        ];
        for (case, activated, want) in cases {
            let observed = observe(&policy(&activated));
            let asked = json!(["*.s3.aws.upbound.io", "buckets.s3.aws.upbound.io"]);
            let inactive = Inactive::read(&settings(Json::Null, asked), &graph(), &observed);
            let want: BTreeMap<String, Vec<String>> = want
                .into_iter()
                .map(|(r, e)| (r.to_string(), e.iter().map(|e| e.to_string()).collect()))
                .collect();
            assert_eq!(inactive.pending, want, "{case}");
        }
    }

    #[test]
    fn activation_off_waits_for_nothing() {
        let settings = settings(json!({"enabled": false}), json!([]));
        let inactive = Inactive::read(&settings, &graph(), &observe(&BTreeMap::new()));
        assert!(inactive.resources().is_empty());
    }
}
