//! The XR's status: the resolved packages in install order, and the two
//! conditions that say whether resolution worked and whether the packages
//! are up. `status.packages` doubles as the function's durable memory: when
//! the registry cannot be read, the last resolved set is recomposed from it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::compose::packages::{package_reference, package_resource_name};
use crate::error::{Error, Result};
use crate::gating::{condition, is_ready};
use crate::graph::{Graph, PackageNode, repository_path};
use crate::registry::PackageKind;
use crate::sdk::Response;
use crate::sdk::response::ConditionStatus;
use crate::spec::{Settings, XrSpec};

/// One entry of `status.packages`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageStatus {
    pub name: String,
    pub kind: PackageKind,
    pub repository: String,
    pub version: String,
    pub digest: String,
    /// The `spec.package` of the package object.
    pub package: String,
    /// Names of the packages this one depends on.
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(default)]
    pub ready: bool,
}

/// What the XR's observed status remembers from earlier reconciles.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Previous {
    pub packages: Vec<PackageStatus>,
    /// `(status, reason, message)` of each condition type.
    pub conditions: BTreeMap<String, (String, String, String)>,
}

impl Previous {
    /// Reads the observed XR's status leniently: a status this function did
    /// not write (or an older shape) is treated as no memory, never an error.
    pub fn read(composite: &Json) -> Self {
        let packages = composite
            .pointer("/status/packages")
            .cloned()
            .and_then(|p| serde_json::from_value::<Vec<PackageStatus>>(p).ok())
            .unwrap_or_default();
        let conditions = composite
            .pointer("/status/conditions")
            .and_then(Json::as_array)
            .map(|all| {
                all.iter()
                    .filter_map(|c| {
                        let text = |k: &str| {
                            c.get(k)
                                .and_then(Json::as_str)
                                .unwrap_or_default()
                                .to_string()
                        };
                        let kind = c.get("type")?.as_str()?.to_string();
                        Some((kind, (text("status"), text("reason"), text("message"))))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            packages,
            conditions,
        }
    }

    /// The install graph as last resolved.
    pub fn graph(&self, settings: &Settings, spec: &XrSpec) -> Result<Graph> {
        let repository_of: BTreeMap<&str, &str> = self
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.repository.as_str()))
            .collect();
        let nodes = self.packages.iter().map(|p| PackageNode {
            repository: p.repository.clone(),
            kind: p.kind,
            upstream: upstream_of(settings, p),
            name: p.name.clone(),
            version: p.version.clone(),
            digest: p.digest.clone(),
            depends_on: p
                .depends_on
                .iter()
                .filter_map(|d| repository_of.get(d.as_str()).map(|r| r.to_string()))
                .collect(),
            runtime_config_name: spec
                .packages
                .iter()
                .find(|r| r.repository == p.repository)
                .and_then(|r| r.runtime_config_name.clone()),
        });
        Graph::new(nodes).map_err(|e| {
            Error::Dependency(format!(
                "the last resolved set in status.packages is unusable: {e}"
            ))
        })
    }

    /// Composition resource name -> the names it depended on, so removal can
    /// wait for dependents of packages that are no longer planned.
    pub fn dependencies(&self) -> BTreeMap<String, Vec<String>> {
        self.packages
            .iter()
            .map(|p| {
                (
                    resource_name(&p.name),
                    p.depends_on.iter().map(|d| resource_name(d)).collect(),
                )
            })
            .collect()
    }

    pub fn condition(&self, kind: &str) -> Option<&(String, String, String)> {
        self.conditions.get(kind)
    }
}

fn resource_name(package_name: &str) -> String {
    format!("{}{package_name}", crate::compose::packages::PACKAGE_PREFIX)
}

/// The upstream path of a remembered package: `spec.package` without its
/// tag or digest under `Rewrite`; under `Skip` it names ECR, so the mirrors
/// map the repository back.
fn upstream_of(settings: &Settings, package: &PackageStatus) -> String {
    let without_digest = package.package.split('@').next().unwrap_or_default();
    let path = match without_digest.rsplit_once(':') {
        Some((path, tag)) if !tag.contains('/') => path,
        _ => without_digest,
    };
    if path.starts_with(&settings.registry.host()) || repository_path(path) == path {
        return settings
            .upstream_for(&package.repository)
            .map(|(u, _)| u)
            .unwrap_or_else(|| path.to_string());
    }
    path.to_string()
}

/// `status.packages` for a graph, in install order, readiness observed.
pub fn package_statuses(
    settings: &Settings,
    graph: &Graph,
    observed: &BTreeMap<String, Json>,
) -> Vec<PackageStatus> {
    graph
        .install_order()
        .into_iter()
        .map(|node| PackageStatus {
            name: node.name.clone(),
            kind: node.kind,
            repository: node.repository.clone(),
            version: node.version.clone(),
            digest: node.digest.clone(),
            package: package_reference(settings, node),
            depends_on: node
                .depends_on
                .iter()
                .filter_map(|d| graph.get(d).map(|n| n.name.clone()))
                .collect(),
            ready: observed
                .get(&package_resource_name(node))
                .is_some_and(is_ready),
        })
        .collect()
}

/// Says why a package is not ready yet, for the PackagesHealthy message.
pub fn describe_not_ready(
    name: &str,
    observed: Option<&Json>,
    waiting_on: Option<&[String]>,
) -> String {
    match (observed, waiting_on) {
        (None, Some(needs)) => format!("{name} (waiting for {})", needs.join(", ")),
        (None, None) => format!("{name} (not created yet)"),
        (Some(object), _) => {
            let state = |kind: &str| match condition(object, kind) {
                Some((status, "")) => format!("{kind}={status}"),
                Some((status, reason)) => format!("{kind}={status} ({reason})"),
                None => format!("{kind} unknown"),
            };
            format!("{name} ({}, {})", state("Installed"), state("Healthy"))
        }
    }
}

/// Writes `status.packages`, the `Resolved` and `PackagesHealthy`
/// conditions, and an event only when something changed since the status
/// the XR already shows (Crossplane turns every result into an event).
pub struct Report<'a> {
    pub settings: &'a Settings,
    pub graph: &'a Graph,
    pub observed: &'a BTreeMap<String, Json>,
    pub waiting: &'a [(String, Vec<String>)],
    pub previous: &'a Previous,
    /// Why the registry could not be read this time, if it could not.
    pub failure: Option<&'a Error>,
}

impl Report<'_> {
    pub fn write(&self, response: &mut Response) -> Result<()> {
        let packages = if self.graph.is_empty() && self.failure.is_some() {
            // Nothing resolved and nothing remembered that parsed: keep
            // whatever status we had rather than erase the memory.
            self.previous.packages.clone()
        } else {
            package_statuses(self.settings, self.graph, self.observed)
        };
        self.resolved(response, &packages);
        self.healthy(response, &packages);
        let mut status = serde_json::Map::new();
        status.insert(
            "packages".to_string(),
            serde_json::to_value(&packages)
                .map_err(|e| Error::InvalidRequest(format!("encoding status.packages: {e}")))?,
        );
        response.set_composite_status(status);
        Ok(())
    }

    fn resolved(&self, response: &mut Response, packages: &[PackageStatus]) {
        match self.failure {
            None => {
                response.condition(
                    RESOLVED,
                    ConditionStatus::True,
                    "Resolved",
                    format!(
                        "resolved {} packages from {}",
                        packages.len(),
                        self.settings.registry
                    ),
                );
                let identity = |p: &[PackageStatus]| -> Vec<(String, String, String)> {
                    p.iter()
                        .map(|s| (s.name.clone(), s.version.clone(), s.digest.clone()))
                        .collect()
                };
                if identity(packages) != identity(&self.previous.packages) {
                    let list: Vec<String> = packages
                        .iter()
                        .map(|p| format!("{} {}", p.name, p.version))
                        .collect();
                    response.normal("Resolved", format!("resolved {}", list.join(", ")));
                }
            }
            Some(error) => {
                let reason = failure_reason(error);
                let message = if packages.is_empty() {
                    format!("{error}; nothing resolved yet, will retry")
                } else {
                    format!(
                        "{error}; keeping the last resolved set of {} packages, will retry",
                        packages.len()
                    )
                };
                let seen = self
                    .previous
                    .condition(RESOLVED)
                    .is_some_and(|(status, r, m)| {
                        status == "False" && r == reason && *m == message
                    });
                if !seen {
                    response.warning(reason, message.clone());
                }
                response.condition(RESOLVED, ConditionStatus::False, reason, message);
            }
        }
    }

    fn healthy(&self, response: &mut Response, packages: &[PackageStatus]) {
        if packages.is_empty() {
            response.condition(
                PACKAGES_HEALTHY,
                ConditionStatus::Unknown,
                "NotResolved",
                "no packages resolved yet",
            );
            return;
        }
        let waiting: BTreeMap<&str, &[String]> = self
            .waiting
            .iter()
            .map(|(name, needs)| (name.as_str(), needs.as_slice()))
            .collect();
        let mut unhealthy = false;
        let not_ready: Vec<String> = packages
            .iter()
            .filter(|p| !p.ready)
            .map(|p| {
                let resource = resource_name(&p.name);
                let object = self.observed.get(&resource);
                unhealthy |= object
                    .and_then(|o| condition(o, "Healthy"))
                    .is_some_and(|(s, _)| s == "False");
                describe_not_ready(&p.name, object, waiting.get(resource.as_str()).copied())
            })
            .collect();
        if not_ready.is_empty() {
            response.condition(
                PACKAGES_HEALTHY,
                ConditionStatus::True,
                "Healthy",
                format!("all {} packages are installed and healthy", packages.len()),
            );
        } else {
            response.condition(
                PACKAGES_HEALTHY,
                ConditionStatus::False,
                if unhealthy { "Unhealthy" } else { "Installing" },
                format!("not ready: {}", not_ready.join("; ")),
            );
        }
    }
}

pub const RESOLVED: &str = "Resolved";
pub const PACKAGES_HEALTHY: &str = "PackagesHealthy";

/// The PascalCase reason for a failure the function rides out.
fn failure_reason(error: &Error) -> &'static str {
    match error {
        Error::DeadlineExceeded { .. } => "RegistryTimeout",
        Error::Credentials(_) => "NoCredentials",
        Error::InvalidPackage { .. } => "InvalidPackage",
        _ => "RegistryUnavailable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdk::request::decode;
    use crate::spec::Input;
    use serde_json::json;

    fn settings(strategy: &str) -> (Settings, XrSpec) {
        let spec: XrSpec = decode(json!({
            "registry": {"accountId": "123456789012", "region": "eu-west-2"},
            "packages": [{"kind": "Provider", "repository": "upbound/provider-aws-s3", "version": "v2.2.0", "runtimeConfigName": "rc"}],
            "strategy": strategy
        }))
        .expect("spec");
        (
            Settings::new("demo", &spec, &Input::default()).expect("settings"),
            spec,
        )
    }

    fn remembered(package: &str) -> Json {
        json!({"status": {
            "packages": [
                {"name": "upbound-provider-family-aws", "kind": "Provider", "repository": "upbound/provider-family-aws", "version": "v2.2.0", "digest": "sha256:aa", "package": package, "dependsOn": [], "ready": true},
                {"name": "upbound-provider-aws-s3", "kind": "Provider", "repository": "upbound/provider-aws-s3", "version": "v2.2.0", "digest": "sha256:bb", "package": "ignored", "dependsOn": ["upbound-provider-family-aws"], "ready": false}
            ],
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
                "123456789012.dkr.ecr.eu-west-2.amazonaws.com/upbound/provider-family-aws:v2.2.0",
            ),
            (
                "Rewrite",
                "xpkg.upbound.io/upbound/provider-family-aws@sha256:aa",
            ),
        ] {
            let (settings, spec) = settings(strategy);
            let previous = Previous::read(&remembered(package));
            assert_eq!(
                previous.condition("Resolved").map(|c| c.1.as_str()),
                Some("Resolved")
            );
            let graph = previous.graph(&settings, &spec).expect("graph");
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

    #[test]
    fn foreign_status_is_no_memory() {
        for composite in [
            json!({}),
            json!({"status": {"packages": "x"}}),
            json!({"status": {"packages": [{"name": 1}]}}),
        ] {
            assert_eq!(Previous::read(&composite).packages, vec![]);
        }
    }

    #[test]
    fn not_ready_descriptions_say_what_is_missing() {
        let object = json!({"status": {"conditions": [{"type": "Installed", "status": "True"}, {"type": "Healthy", "status": "False", "reason": "UnhealthyPackageRevision"}]}});
        assert_eq!(
            describe_not_ready("p", Some(&object), None),
            "p (Installed=True, Healthy=False (UnhealthyPackageRevision))"
        );
        assert_eq!(
            describe_not_ready("p", None, Some(&["iam-attachment".to_string()])),
            "p (waiting for iam-attachment)"
        );
        assert_eq!(
            describe_not_ready("p", Some(&json!({})), None),
            "p (Installed unknown, Healthy unknown)"
        );
    }
}
