//! Package objects (Provider, Function, Configuration) and the ImageConfigs
//! that point upstream package paths at the ECR mirror.

use serde_json::{Map, Value as Json, json};

use super::Planned;
use crate::error::{Error, Result};
use crate::graph::{Graph, PackageNode, dns_label};
use crate::registry::PackageKind;
use crate::spec::Settings;
use crate::spec::xr::Strategy;

pub const PACKAGE_PREFIX: &str = "package-";
pub const IMAGE_CONFIG_PREFIX: &str = "image-config-";

/// The composition resource name of the package object named
/// `package_name` (its `metadata.name`).
pub fn package_resource_name(package_name: &str) -> String {
    format!("{PACKAGE_PREFIX}{package_name}")
}

/// The package object name a package's composition resource name stands
/// for; `None` for resources that are not packages.
pub fn package_name(resource_name: &str) -> Option<&str> {
    resource_name.strip_prefix(PACKAGE_PREFIX)
}

/// What `spec.package` says: the upstream path for `Rewrite` (the
/// ImageConfig sends the pull to ECR), the ECR path for `Skip`; a digest when
/// the user pinned one or the input asks for pinning.
pub fn package_reference(settings: &Settings, node: &PackageNode) -> String {
    let base = match settings.strategy {
        Strategy::Rewrite => node.upstream.clone(),
        Strategy::Skip => format!("{}/{}", settings.registry.host(), node.repository),
    };
    if settings.pin_digests || node.version.starts_with("sha256:") {
        format!("{base}@{}", node.digest)
    } else {
        format!("{base}:{}", node.version)
    }
}

/// One ImageConfig per mirror that some package is pulled through
/// (`Rewrite` only; `Skip` references ECR directly).
pub fn compose_image_configs(settings: &Settings, graph: &Graph) -> Vec<Planned> {
    if settings.strategy != Strategy::Rewrite {
        return Vec::new();
    }
    settings
        .mirrors
        .iter()
        .filter(|mirror| {
            graph.nodes().any(|node| {
                settings
                    .repository_for(&node.upstream)
                    .is_some_and(|(_, used)| used == *mirror)
            })
        })
        .map(|mirror| {
            let label = dns_label(mirror.upstream.trim_end_matches('/'));
            let object = json!({
                "apiVersion": "pkg.crossplane.io/v1beta1",
                "kind": "ImageConfig",
                "metadata": {"name": format!("ecr-mirror-{label}")},
                "spec": {
                    "matchImages": [{"type": "Prefix", "prefix": mirror.upstream}],
                    "rewriteImage": {"prefix": format!("{}/{}", settings.registry.host(), mirror.repository_prefix)}
                }
            });
            Planned {
                name: format!("{IMAGE_CONFIG_PREFIX}{label}"),
                object: into_map(object),
                needs: Vec::new(),
            }
        })
        .collect()
}

/// The package objects, in install order. Each needs `gates` (pull access
/// and mirrors) and the package objects of its dependencies.
pub fn compose_packages(
    settings: &Settings,
    graph: &Graph,
    gates: &[String],
) -> Result<Vec<Planned>> {
    graph
        .install_order()
        .into_iter()
        .map(|node| {
            let mut needs = gates.to_vec();
            for dependency in &node.depends_on {
                let Some(dep) = graph.get(dependency) else {
                    continue;
                };
                if settings.strategy == Strategy::Skip {
                    check_family(node, dep)?;
                }
                needs.push(package_resource_name(&dep.name));
            }
            let mut spec = Map::new();
            spec.insert(
                "package".to_string(),
                json!(package_reference(settings, node)),
            );
            if settings.strategy == Strategy::Skip {
                // Every dependency is composed here, from ECR; Crossplane's
                // resolver would fetch them from upstream instead.
                spec.insert("skipDependencyResolution".to_string(), json!(true));
            }
            if let Some(runtime) = &node.runtime_config_name
                && node.kind != PackageKind::Configuration
            {
                spec.insert("runtimeConfigRef".to_string(), json!({"name": runtime}));
            }
            let object = json!({
                "apiVersion": "pkg.crossplane.io/v1",
                "kind": node.kind.as_str(),
                "metadata": {"name": node.name},
                "spec": spec,
            });
            Ok(Planned {
                name: package_resource_name(&node.name),
                object: into_map(object),
                needs,
            })
        })
        .collect()
}

/// Crossplane binds a family provider's RBAC to its members only when they
/// come from the same registry and the same first path segment; with `Skip`
/// a mirror layout that splits them installs providers that cannot read
/// their ProviderConfigs.
fn check_family(node: &PackageNode, dep: &PackageNode) -> Result<()> {
    if node.kind != PackageKind::Provider || dep.kind != PackageKind::Provider {
        return Ok(());
    }
    let first = |repo: &str| repo.split('/').next().unwrap_or_default().to_string();
    if first(&node.repository) == first(&dep.repository) {
        return Ok(());
    }
    Err(Error::Dependency(format!(
        "provider {} and its dependency {} are mirrored under different first path segments ({:?} and {:?}); \
         with strategy Skip Crossplane only binds family permissions when they match, so mirror them under one prefix",
        node.repository,
        dep.repository,
        first(&node.repository),
        first(&dep.repository)
    )))
}

pub(super) fn into_map(value: Json) -> Map<String, Json> {
    match value {
        Json::Object(map) => map,
        _ => Map::new(),
    }
}
