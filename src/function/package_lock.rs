//! Crossplane's package Lock, read for one fact: which installed packages
//! still declare which dependencies.
//!
//! Crossplane's resolver installs any dependency that a package in the Lock
//! declares and no package in the Lock provides, matching the dependency's
//! `package` against each entry's `source` exactly. A package revision
//! leaves the Lock only once it is deleted, some time after its package
//! object is gone. So a dependency removed as soon as its dependent's
//! package object disappears can come straight back, installed by the
//! resolver under its own name and owned by nobody. While the Lock still
//! lists a dependent, the dependency stays.
//!
//! The function asks Crossplane for the Lock (a required resource) only
//! while it is removing packages, so a steady reconcile stays one call.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

use crate::proto::v1::RunFunctionRequest;
use crate::sdk::request::can_send_required_resources;
use crate::sdk::structs::project;

/// The name the Lock is asked for under, in `requirements.resources` and
/// read back from `required_resources`.
pub const REQUIREMENT: &str = "crossplane-package-lock";
pub const API_VERSION: &str = "pkg.crossplane.io/v1beta1";
pub const KIND: &str = "Lock";
/// Crossplane keeps one Lock, under this name.
pub const NAME: &str = "lock";

/// What is read of the Lock (never its metadata or status).
const LOCK_PATHS: &[&[&str]] = &[&["kind"], &["packages"]];

/// Lock entries read at most; a Lock longer than this (far beyond any real
/// cluster) is not trusted to be complete, so every leaving package stays.
pub const MAX_PACKAGES: usize = 10_000;

/// What this call knows of the Lock.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Lock {
    /// The caller does not say it can send required resources: nothing is
    /// asked and nothing is known (removal follows the XR's status alone).
    #[default]
    Unavailable,
    /// The caller can send it and has not yet: Crossplane calls again with
    /// it once asked, so this call keeps every leaving package.
    Pending,
    /// The dependencies the Lock's packages declare: each dependency's
    /// `package` -> the `source`s of the packages declaring it.
    Known(BTreeMap<String, BTreeSet<String>>),
}

impl Lock {
    /// The Lock as the request carries it.
    pub fn read(request: &RunFunctionRequest) -> Self {
        if !can_send_required_resources(request) {
            return Lock::Unavailable;
        }
        let Some(resources) = request.required_resources.get(REQUIREMENT) else {
            return Lock::Pending;
        };
        let mut declared: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for item in &resources.items {
            let Some(lock) = item.resource.as_ref().map(|s| project(s, LOCK_PATHS)) else {
                continue;
            };
            if lock.get("kind").and_then(Json::as_str) != Some(KIND) {
                continue;
            }
            let packages = lock
                .get("packages")
                .and_then(Json::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            if packages.len() > MAX_PACKAGES {
                tracing::warn!(
                    packages = packages.len(),
                    "Crossplane's Lock is longer than {MAX_PACKAGES} entries; keeping every leaving package"
                );
                return Lock::Pending;
            }
            for package in packages {
                let source = text(package, "source");
                let dependencies = package
                    .get("dependencies")
                    .and_then(Json::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                for dependency in dependencies {
                    let wanted = text(dependency, "package");
                    if !wanted.is_empty() && wanted != source {
                        declared
                            .entry(wanted.to_string())
                            .or_default()
                            .insert(source.to_string());
                    }
                }
            }
        }
        Lock::Known(declared)
    }

    /// Whether the caller can be asked for the Lock.
    pub fn can_be_asked(&self) -> bool {
        !matches!(self, Lock::Unavailable)
    }

    /// Why a package object with `spec.package` = `package` must stay: the
    /// sources of the Lock's packages that still declare it (one entry,
    /// "Crossplane's Lock (not read yet)", while the Lock is pending), or
    /// nothing when it may go.
    pub fn dependents_of(&self, package: &str) -> Vec<String> {
        match self {
            Lock::Unavailable => Vec::new(),
            Lock::Pending => vec!["Crossplane's Lock (not read yet)".to_string()],
            Lock::Known(declared) => declared
                .get(source_of(package))
                .map(|by| by.iter().cloned().collect())
                .unwrap_or_default(),
        }
    }
}

fn text<'a>(object: &'a Json, field: &str) -> &'a str {
    object.get(field).and_then(Json::as_str).unwrap_or_default()
}

/// A package reference without its tag or digest, the way the Lock records
/// a package's `source`: `reg.example/a/b:v1` and `reg.example/a/b@sha256:…`
/// are both `reg.example/a/b`; a registry port is not a tag.
pub fn source_of(package: &str) -> &str {
    let package = package.split_once('@').map_or(package, |(path, _)| path);
    match package.rfind(':') {
        Some(colon) if !package[colon..].contains('/') => &package[..colon],
        _ => package,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1::{Resource, Resources};
    use crate::sdk::request::request_from;
    use crate::sdk::structs::json_to_struct;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn sources_drop_the_tag_or_digest_only() {
        for (package, source) in [
            (
                "xpkg.upbound.io/upbound/provider-family-aws:v1.2.3",
                "xpkg.upbound.io/upbound/provider-family-aws",
            ),
            (
                "xpkg.upbound.io/upbound/provider-family-aws@sha256:abcd",
                "xpkg.upbound.io/upbound/provider-family-aws",
            ),
            ("reg.example:5000/a/b:v1", "reg.example:5000/a/b"),
            ("reg.example:5000/a/b", "reg.example:5000/a/b"),
            (
                "reg.example:5000/a/b:v1@sha256:abcd",
                "reg.example:5000/a/b",
            ),
            ("a/b", "a/b"),
            ("", ""),
        ] {
            assert_eq!(source_of(package), source, "{package}");
        }
    }

    proptest! {
        #[test]
        fn source_of_never_panics_and_is_a_prefix(package in "\\PC{0,80}") {
            let source = source_of(&package);
            prop_assert!(package.starts_with(source));
            prop_assert!(!source.contains('@'));
        }
    }

    fn request(capable: bool, lock: Option<Option<Json>>) -> RunFunctionRequest {
        let mut request = request_from(capable);
        if let Some(lock) = lock {
            let items = lock
                .iter()
                .map(|l| Resource {
                    resource: json_to_struct(l),
                    ..Default::default()
                })
                .collect();
            request
                .required_resources
                .insert(REQUIREMENT.to_string(), Resources { items });
        }
        request
    }

    fn lock(packages: Json) -> Json {
        json!({"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": NAME}, "packages": packages})
    }

    const FAMILY: &str = "xpkg.upbound.io/upbound/provider-family-aws";

    #[test]
    fn what_the_request_says_of_the_lock() {
        let s3_depends_on_family = lock(json!([
            {"name": "upbound-provider-aws-s3-1", "type": "Provider",
             "source": "xpkg.upbound.io/upbound/provider-aws-s3", "version": "v1.20.0",
             "dependencies": [{"package": FAMILY, "constraints": ">=v1", "type": "Provider"}]},
            {"name": "upbound-provider-family-aws-1", "type": "Provider",
             "source": FAMILY, "version": "v1.20.0", "dependencies": []},
        ]));
        let family_alone = lock(json!([
            {"name": "upbound-provider-family-aws-1", "type": "Provider",
             "source": FAMILY, "version": "v1.20.0",
             "dependencies": [{"package": FAMILY, "constraints": ">=v1"}]},
        ]));
        let tagged = format!("{FAMILY}:v1.20.0");
        let s3 = vec!["xpkg.upbound.io/upbound/provider-aws-s3".to_string()];
        let pending = vec!["Crossplane's Lock (not read yet)".to_string()];
        for (name, request, dependents) in [
            (
                "no capability: nothing known",
                request(false, Some(Some(s3_depends_on_family.clone()))),
                vec![],
            ),
            (
                "capable, not sent yet: pending",
                request(true, None),
                pending,
            ),
            (
                "a dependent in the Lock",
                request(true, Some(Some(s3_depends_on_family))),
                s3,
            ),
            (
                "only itself in the Lock",
                request(true, Some(Some(family_alone))),
                vec![],
            ),
            ("no Lock in the cluster", request(true, Some(None)), vec![]),
            (
                "not a Lock",
                request(
                    true,
                    Some(Some(json!({"kind": "ConfigMap", "packages": "x"}))),
                ),
                vec![],
            ),
        ] {
            assert_eq!(
                Lock::read(&request).dependents_of(&tagged),
                dependents,
                "{name}"
            );
        }
    }

    #[test]
    fn an_overlong_lock_keeps_everything() {
        let many: Vec<Json> = (0..=MAX_PACKAGES)
            .map(|i| json!({"name": format!("p{i}"), "source": format!("r/p{i}")}))
            .collect();
        assert_eq!(
            Lock::read(&request(true, Some(Some(lock(Json::Array(many)))))),
            Lock::Pending
        );
    }
}
