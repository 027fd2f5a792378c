//! The XR's ManagedResourceActivationPolicy: on Crossplane v2 a provider
//! that declares `safe-start` installs its managed resource definitions
//! inactive, so nothing reconciles the IAM objects this function composes,
//! nor the kinds an app team asked a provider for, until a policy
//! activates them (see `spec::activation`). One policy per XR activates
//! exactly the IAM definitions and the XR's `activate` entries; the IAM
//! objects wait for it (their kinds do not exist before).

use std::collections::BTreeSet;

use serde_json::json;

use super::Planned;
use super::iam;
use super::packages::into_map;
use crate::spec::Settings;

/// The policy's composition resource name.
pub const RESOURCE: &str = "activation-policy";
pub const PREFIX: &str = "activation-";
pub const API_VERSION: &str = "apiextensions.crossplane.io/v1alpha1";
pub const KIND: &str = "ManagedResourceActivationPolicy";

/// The policy, when the input enables activation and there is anything to
/// activate; `dependents` (the IAM objects) then wait for it.
pub fn compose(settings: &Settings, dependents: &mut [Planned]) -> Option<Planned> {
    let activation = settings.activation.as_ref()?;
    let mut activate: BTreeSet<String> = BTreeSet::new();
    if let Some(iam) = &settings.iam {
        activate.extend(iam::definitions(iam));
    }
    activate.extend(activation.patterns());
    if activate.is_empty() {
        // Crossplane requires at least one entry.
        return None;
    }
    for dependent in dependents {
        dependent.needs.push(RESOURCE.to_string());
    }
    Some(Planned {
        name: RESOURCE.to_string(),
        object: into_map(json!({
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": activation.policy_name},
            "spec": {"activate": activate},
        })),
        needs: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Input;
    use crate::spec::xr::{XrRef, XrSpec};
    use serde_json::{Value as Json, json};

    fn settings(packages: Json, iam: Json, input: Json) -> Settings {
        let spec: XrSpec = serde_json::from_value(json!({
            "registry": {"accountId": "123456789012", "region": "us-east-1"},
            "packages": packages,
            "iam": iam,
        }))
        .unwrap();
        let input: Input = serde_json::from_value(input).unwrap();
        Settings::new(XrRef::named("team-a"), &spec, &input).unwrap()
    }

    fn s3(activate: Json) -> Json {
        json!([{"kind": "Provider", "repository": "upbound/provider-aws-s3",
                "version": "v2.2.0", "activate": activate}])
    }

    fn activate(planned: &Planned) -> Json {
        planned.object["spec"]["activate"].clone()
    }

    #[test]
    fn one_policy_per_xr_with_the_iam_definitions_and_what_the_xr_asks() {
        let settings = settings(
            s3(json!(["*.s3.aws.upbound.io", "buckets.s3.aws.upbound.io"])),
            json!({"enabled": true}),
            json!({"allowedActivations": ["*.s3.aws.upbound.io"]}),
        );
        let mut iam = iam::compose(&settings, &Default::default());
        let policy = compose(&settings, &mut iam).unwrap();
        assert_eq!(policy.name, RESOURCE);
        assert_eq!(
            policy.object["metadata"]["name"],
            json!("ecr-packages-team-a")
        );
        assert_eq!(
            activate(&policy),
            json!([
                "*.s3.aws.upbound.io",
                "buckets.s3.aws.upbound.io",
                "policies.iam.aws.upbound.io",
                "rolepolicyattachments.iam.aws.upbound.io",
                "roles.iam.aws.upbound.io",
            ])
        );
        assert!(!iam.is_empty());
        assert!(iam.iter().all(|p| p.needs == [RESOURCE]), "{iam:?}");
    }

    #[test]
    fn namespaced_iam_definitions() {
        let settings = settings(
            s3(json!([])),
            json!({"enabled": true}),
            json!({"iam": {"managedResources": "Namespaced"}}),
        );
        let mut iam = iam::compose(&settings, &Default::default());
        let policy = compose(&settings, &mut iam).unwrap();
        assert_eq!(
            activate(&policy),
            json!([
                "policies.iam.aws.m.upbound.io",
                "rolepolicyattachments.iam.aws.m.upbound.io",
                "roles.iam.aws.m.upbound.io",
            ])
        );
    }

    #[test]
    fn nothing_to_activate_or_activation_off_composes_no_policy() {
        let off = settings(
            s3(json!([])),
            json!({"enabled": true}),
            json!({"activation": {"enabled": false}}),
        );
        let mut iam = iam::compose(&off, &Default::default());
        assert_eq!(compose(&off, &mut iam), None);
        assert!(iam.iter().all(|p| p.needs.is_empty()));

        let nothing = settings(s3(json!([])), json!({"enabled": false}), json!({}));
        assert_eq!(compose(&nothing, &mut []), None);
    }

    #[test]
    fn only_the_xrs_entries_without_iam() {
        let settings = settings(
            s3(json!(["*.s3.aws.upbound.io"])),
            json!({"enabled": false}),
            json!({"allowedActivations": ["*.aws.upbound.io"]}),
        );
        let policy = compose(&settings, &mut []).unwrap();
        assert_eq!(activate(&policy), json!(["*.s3.aws.upbound.io"]));
    }
}
