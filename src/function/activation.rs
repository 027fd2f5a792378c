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
//!
//! Activated is not yet served: Crossplane lists a definition once it has
//! set it `Active`, and creates its CRD after. Before the IAM objects are
//! first composed (the pipeline fails on an object of a kind the API
//! server does not know), the function asks Crossplane for the IAM
//! definitions themselves and waits for each one's `Established=True`.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use crate::compose::activation::{API_VERSION, RESOURCE};
use crate::compose::iam;
use crate::compose::packages::package_resource_name;
use crate::function::observed::{Observed, ObservedResources};
use crate::proto::v1::RunFunctionRequest;
use crate::resolve::graph::Graph;
use crate::sdk::Response;
use crate::sdk::request::can_send_required_resources;
use crate::spec::Settings;

/// Requirement names for the IAM definitions are their names with this
/// prefix.
const REQUIREMENT_PREFIX: &str = "definition-";
/// Managed resource definitions share the policy's group and version.
pub const DEFINITION_KIND: &str = "ManagedResourceDefinition";

/// The composed resources whose definitions are not all active yet, and
/// the `activate` entries each still waits for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Inactive {
    pub pending: BTreeMap<String, Vec<String>>,
    /// The IAM definitions asked for by name, to see them established.
    asked: Vec<String>,
}

impl Inactive {
    /// What is not yet active for the policy (the IAM definitions) and for
    /// each package of `graph` that asked for definitions.
    pub fn read(
        settings: &Settings,
        graph: &Graph,
        observed: &ObservedResources,
        request: &RunFunctionRequest,
    ) -> Self {
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
            let mut missing: Vec<String> = iam::definitions(iam)
                .into_iter()
                .filter(|d| !activated.contains(d.as_str()))
                .collect();
            let first_composed = [iam::ROLE, iam::POLICY, iam::ATTACHMENT]
                .iter()
                .any(|r| !observed.contains_key(*r));
            if missing.is_empty() && first_composed && can_send_required_resources(request) {
                missing = inactive.unestablished(iam::definitions(iam), request);
            }
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

    /// Asks for `definitions` (again on the call that reads them, so the
    /// requirements settle); returns those not yet seen established.
    fn unestablished(
        &mut self,
        definitions: Vec<String>,
        request: &RunFunctionRequest,
    ) -> Vec<String> {
        let mut missing = Vec::new();
        for definition in definitions {
            let answer = request
                .required_resources
                .get(&format!("{REQUIREMENT_PREFIX}{definition}"))
                .and_then(|answer| answer.items.first())
                .and_then(|item| item.resource.as_ref());
            let established = answer.is_some_and(|mrd| {
                Observed::new(Cow::Borrowed(mrd))
                    .condition("Established")
                    .is_some_and(|(status, _)| status == "True")
            });
            if !established {
                missing.push(definition.clone());
            }
            self.asked.push(definition);
        }
        missing
    }

    /// Asks Crossplane for the definitions [`Inactive::read`] looked for.
    pub fn ask(&self, response: &mut Response) {
        for definition in &self.asked {
            response.require_object(
                &format!("{REQUIREMENT_PREFIX}{definition}"),
                API_VERSION,
                DEFINITION_KIND,
                definition,
                None,
            );
        }
    }

    /// Whether `resource` waits for definitions.
    pub fn is_pending(&self, resource: &str) -> bool {
        self.pending.contains_key(resource)
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

    /// A request from a Crossplane that cannot send required resources:
    /// `status.activated` alone counts.
    fn request() -> RunFunctionRequest {
        RunFunctionRequest::default()
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
            let inactive = Inactive::read(
                &settings(Json::Null, asked),
                &graph(),
                &observed,
                &request(),
            );
            let want: BTreeMap<String, Vec<String>> = want
                .into_iter()
                .map(|(r, e)| (r.to_string(), e.iter().map(|e| e.to_string()).collect()))
                .collect();
            assert_eq!(inactive.pending, want, "{case}");
        }
    }

    /// Crossplane has activated the IAM definitions but may not have made
    /// their CRDs yet: before the IAM objects are first composed, each
    /// definition is asked for and must be Established.
    #[test]
    fn activated_iam_definitions_wait_until_established() {
        use crate::proto::v1::{Capability, RequestMeta, Resource, Resources};
        use crate::sdk::structs::json_to_struct;
        let iam = [
            "roles.iam.aws.upbound.io",
            "policies.iam.aws.upbound.io",
            "rolepolicyattachments.iam.aws.upbound.io",
        ];
        let settings = settings(Json::Null, json!([]));
        let observed = observe(&policy(&iam));
        let request = |established: &[&str]| {
            RunFunctionRequest {
            meta: Some(RequestMeta {
                capabilities: vec![Capability::RequiredResources as i32],
                ..Default::default()
            }),
            required_resources: iam
                .iter()
                .map(|name| {
                    let status = if established.contains(name) { "True" } else { "False" };
                    let mrd = json!({"kind": DEFINITION_KIND, "metadata": {"name": name},
                                     "status": {"conditions": [{"type": "Established", "status": status}]}});
                    let item = Resource { resource: json_to_struct(&mrd), ..Default::default() };
                    (format!("{REQUIREMENT_PREFIX}{name}"), Resources { items: vec![item] })
                })
                .collect(),
            ..Default::default()
        }
        };
        let one = Inactive::read(&settings, &graph(), &observed, &request(&iam[..2]));
        assert_eq!(one.of(RESOURCE), Some(&[iam[2].to_string()][..]));
        assert_eq!(one.asked.len(), 3, "asks for each, again");
        let all = Inactive::read(&settings, &graph(), &observed, &request(&iam));
        assert!(!all.is_pending(RESOURCE), "{all:?}");

        // Once the IAM objects exist, their kinds do: nothing is asked.
        let mut composed = policy(&iam);
        for name in [iam::ROLE, iam::POLICY, iam::ATTACHMENT] {
            composed.insert(
                name.to_string(),
                json!({"apiVersion": "iam.aws.upbound.io/v1beta1", "kind": "Role"}),
            );
        }
        let steady = Inactive::read(&settings, &graph(), &observe(&composed), &request(&[]));
        assert!(
            steady.asked.is_empty() && steady.pending.is_empty(),
            "{steady:?}"
        );
    }

    #[test]
    fn activation_off_waits_for_nothing() {
        let settings = settings(json!({"enabled": false}), json!([]));
        let inactive = Inactive::read(&settings, &graph(), &observe(&BTreeMap::new()), &request());
        assert!(inactive.resources().is_empty());
    }
}
