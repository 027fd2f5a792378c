//! Package objects of ours that are leaving but not gone yet.
//!
//! Once a package is no longer desired, Crossplane deletes its object and
//! stops showing it as observed, but the object lives on until its
//! revisions are deleted; meanwhile Crossplane's package controller can
//! still recreate a revision, which adds itself back to the Lock with the
//! dependencies it declares, and the resolver reinstalls any of them that is
//! gone. So a leaving package's remembered edges (and its entry in
//! `status.packages`) hold until its object is really gone, which the
//! function learns by asking Crossplane for it (a required resource, by kind
//! and name) while it is leaving.

use std::collections::BTreeSet;

use crate::compose::packages::package_resource_name;
use crate::function::memory::PackageStatus;
use crate::proto::v1::RunFunctionRequest;
use crate::sdk::Response;
use crate::sdk::request::can_send_required_resources;
use crate::spec::limits::MAX_LEAVING_LOOKUPS;

const API_VERSION: &str = "pkg.crossplane.io/v1";

/// The leaving package objects this call asks about, and which of them
/// still exist (as composition resource names).
#[derive(Debug, Default)]
pub struct Leaving {
    /// Requirement name (the composition resource name), kind, object name.
    asked: Vec<(String, &'static str, String)>,
    present: BTreeSet<String>,
}

impl Leaving {
    /// `leaving`: the remembered packages the plan no longer has (checked
    /// as they were read, see `memory`). Each is present if Crossplane
    /// sent it back; while the answer is still to come (the first call of a
    /// reconcile) it counts as present. At most [`MAX_LEAVING_LOOKUPS`] are
    /// asked about in one call; the rest count as present, unasked, until
    /// earlier ones are gone. A caller that cannot send required resources
    /// is not asked, and only what is observed counts.
    pub fn read<'a>(
        request: &RunFunctionRequest,
        leaving: impl IntoIterator<Item = &'a PackageStatus>,
    ) -> Self {
        let mut lingering = Leaving::default();
        if !can_send_required_resources(request) {
            return lingering;
        }
        for entry in leaving {
            let resource = package_resource_name(&entry.name);
            if lingering.asked.len() == MAX_LEAVING_LOOKUPS {
                lingering.present.insert(resource);
                continue;
            }
            let still_there = request
                .required_resources
                .get(&resource)
                .is_none_or(|r| !r.items.is_empty());
            if still_there {
                lingering.present.insert(resource.clone());
            }
            lingering
                .asked
                .push((resource, entry.kind.as_str(), entry.name.clone()));
        }
        lingering
    }

    /// The leaving packages (composition resource names) whose objects
    /// still exist.
    pub fn resources(&self) -> &BTreeSet<String> {
        &self.present
    }

    /// Whether anything is asked about.
    pub fn is_asking(&self) -> bool {
        !self.asked.is_empty()
    }

    /// Asks Crossplane for each leaving package object (again on the call
    /// that reads them, so the requirements settle).
    pub fn ask(&self, response: &mut Response) {
        for (requirement, kind, name) in &self.asked {
            response.require_resource(requirement, API_VERSION, kind, name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::PackageKind;
    use crate::proto::v1::{Resource, Resources};
    use crate::sdk::request::request_from;
    use crate::sdk::structs::json_to_struct;
    use serde_json::json;

    fn entry(name: &str) -> PackageStatus {
        PackageStatus {
            name: name.to_string(),
            kind: PackageKind::Provider,
            repository: format!("upbound/{name}"),
            version: "v1.0.0".to_string(),
            digest: String::new(),
            package: String::new(),
            depends_on: vec![],
            ready: true,
            leaving: true,
            shared_with: None,
            rollout: None,
            skipped: Vec::new(),
            available: None,
        }
    }

    fn request(capable: bool, answered: &[(&str, bool)]) -> RunFunctionRequest {
        let mut request = request_from(capable);
        for (resource, exists) in answered {
            let items = if *exists {
                vec![Resource {
                    resource: json_to_struct(&json!({"kind": "Provider"})),
                    ..Default::default()
                }]
            } else {
                vec![]
            };
            request
                .required_resources
                .insert(resource.to_string(), Resources { items });
        }
        request
    }

    #[test]
    fn what_counts_as_still_there() {
        let s3 = entry("provider-aws-s3");
        let resource = package_resource_name(&s3.name);
        for (case, request, present, asked) in [
            (
                "not capable: never asked",
                request(false, &[]),
                false,
                false,
            ),
            ("capable, not answered yet", request(true, &[]), true, true),
            (
                "answered: exists",
                request(true, &[(&resource, true)]),
                true,
                true,
            ),
            (
                "answered: gone",
                request(true, &[(&resource, false)]),
                false,
                true,
            ),
        ] {
            let lingering = Leaving::read(&request, [&s3]);
            assert_eq!(lingering.resources().contains(&resource), present, "{case}");
            assert_eq!(lingering.is_asking(), asked, "{case}");
        }
    }

    /// However many entries are leaving, one call asks about a bounded
    /// number; the others are kept as present (never dropped unasked) and
    /// asked about once earlier ones are gone.
    #[test]
    fn lookups_are_bounded() {
        let entries: Vec<PackageStatus> = (0..MAX_LEAVING_LOOKUPS + 50)
            .map(|i| entry(&format!("provider-{i}")))
            .collect();
        let lingering = Leaving::read(&request(true, &[]), &entries);
        let mut response = Response::to(&RunFunctionRequest::default());
        lingering.ask(&mut response);
        let requirements = response.finish().requirements.unwrap_or_default();
        assert_eq!(requirements.resources.len(), MAX_LEAVING_LOOKUPS);
        assert_eq!(lingering.resources().len(), entries.len());
        // The first ones answered gone: the rest move up.
        let gone: Vec<(String, bool)> = entries[..MAX_LEAVING_LOOKUPS]
            .iter()
            .map(|e| (package_resource_name(&e.name), false))
            .collect();
        let gone: Vec<(&str, bool)> = gone.iter().map(|(r, e)| (r.as_str(), *e)).collect();
        let lingering = Leaving::read(&request(true, &gone), &entries[MAX_LEAVING_LOOKUPS..]);
        assert_eq!(lingering.resources().len(), 50);
        assert!(lingering.is_asking());
    }

    #[test]
    fn each_leaving_package_is_asked_for_by_kind_and_name() {
        let s3 = entry("provider-aws-s3");
        let lingering = Leaving::read(&request(true, &[]), [&s3]);
        let mut response = Response::to(&RunFunctionRequest::default());
        lingering.ask(&mut response);
        let requirements = response.finish().requirements.unwrap_or_default();
        let selector = &requirements.resources[&package_resource_name(&s3.name)];
        assert_eq!(
            (selector.api_version.as_str(), selector.kind.as_str()),
            ("pkg.crossplane.io/v1", "Provider")
        );
        assert_eq!(
            selector.r#match,
            Some(crate::proto::v1::resource_selector::Match::MatchName(
                "provider-aws-s3".to_string()
            ))
        );
    }
}
