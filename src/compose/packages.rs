//! Package objects (Provider, Function, Configuration) and the ImageConfigs
//! that point upstream package paths at the ECR mirror.

// Hashed for every package of every call: foldhash, not SipHash.
use foldhash::HashMap;

use serde_json::{Map, Value as Json, json};

use super::Planned;
use crate::error::{DependencyError, Result};
use crate::names::{Grammar, object_name};
use crate::package::PackageKind;
use crate::resolve::graph::{Graph, PackageNode};
use crate::spec::Settings;
use crate::spec::input::Mirror;
use crate::spec::xr::Strategy;

pub const PACKAGE_PREFIX: &str = "package-";
pub const IMAGE_CONFIG_PREFIX: &str = "image-config-";

/// The composition resource name of the package object named
/// `package_name` (its `metadata.name`): `package-<name>`, a DNS label, so
/// cut with a hash ([`object_name`]) for names over 55 characters.
pub fn package_resource_name(package_name: &str) -> String {
    object_name(
        PACKAGE_PREFIX.trim_end_matches('-'),
        package_name,
        Grammar::Label,
    )
}

/// The package object name a package's composition resource name stands
/// for; `None` for resources that are not packages. Exact for names of up
/// to 55 characters; a longer name's resource name is cut, so look it up
/// among the known names with [`PackageNames`] instead.
pub fn package_name(resource_name: &str) -> Option<&str> {
    resource_name.strip_prefix(PACKAGE_PREFIX)
}

/// Package names by their composition resource names, built once, for
/// looking up many resource names among the same known names, for every
/// length of name: of several names with one resource name, the first one
/// given wins.
#[derive(Default)]
pub struct PackageNames<'a> {
    by_resource: HashMap<String, &'a str>,
}

impl<'a> PackageNames<'a> {
    pub fn of(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut by_resource = HashMap::default();
        for name in names {
            by_resource
                .entry(package_resource_name(name))
                .or_insert(name);
        }
        Self { by_resource }
    }

    /// The known name whose composition resource name is `resource_name`.
    pub fn name_of(&self, resource_name: &str) -> Option<&'a str> {
        if !resource_name.starts_with(PACKAGE_PREFIX) {
            return None;
        }
        self.by_resource.get(resource_name).copied()
    }
}

/// The ImageConfig's `metadata.name` for a mirror: `ecr-mirror-<upstream>`
/// (`xpkg.upbound.io/` -> `ecr-mirror-xpkg-upbound-io`).
pub fn image_config_name(upstream: &str) -> String {
    object_name("ecr-mirror", upstream, Grammar::PathPrefix)
}

/// The ImageConfig's composition resource name for a mirror:
/// `image-config-<upstream>`.
pub fn image_config_resource_name(upstream: &str) -> String {
    object_name(
        IMAGE_CONFIG_PREFIX.trim_end_matches('-'),
        upstream,
        Grammar::PathPrefix,
    )
}

/// What `spec.package` says: the upstream path for `Rewrite` (the
/// ImageConfig sends the pull to ECR), the ECR path for `Skip`; a digest when
/// the user pinned one or the input asks for pinning.
pub fn package_reference(settings: &Settings, node: &PackageNode) -> String {
    let (separator, tail) = if settings.pin_digests || node.version.starts_with("sha256:") {
        ('@', &node.digest)
    } else {
        (':', &node.version)
    };
    // Built by hand, as `format!` would be several times slower for every
    // package of every compose.
    let path: [&str; 3] = match settings.strategy {
        Strategy::Rewrite => [&node.upstream, "", ""],
        Strategy::Skip => [&settings.registry_host, "/", &node.repository],
    };
    let mut reference =
        String::with_capacity(path.iter().map(|p| p.len()).sum::<usize>() + 1 + tail.len());
    path.iter().for_each(|p| reference.push_str(p));
    reference.push(separator);
    reference.push_str(tail);
    reference
}

/// One ImageConfig per mirror that some package is pulled through
/// (`Rewrite` only; `Skip` references ECR directly).
pub fn compose_image_configs(settings: &Settings, graph: &Graph) -> Vec<Planned> {
    if settings.strategy != Strategy::Rewrite {
        return Vec::new();
    }
    // Each package's mirror found once, not once per mirror listed, and
    // told apart by where it is in the settings (the same entry), not by
    // comparing its strings.
    let mut used: Vec<&Mirror> = Vec::new();
    for mirror in graph
        .nodes()
        .filter_map(|n| settings.mirror_for(&n.upstream))
    {
        if !used.iter().any(|seen| std::ptr::eq(*seen, mirror)) {
            used.push(mirror);
        }
    }
    settings
        .mirrors
        .iter()
        .filter(|mirror| used.iter().any(|seen| std::ptr::eq(*seen, *mirror)))
        .map(|mirror| {
            let object = json!({
                "apiVersion": "pkg.crossplane.io/v1beta1",
                "kind": "ImageConfig",
                "metadata": {"name": image_config_name(&mirror.upstream)},
                "spec": {
                    "matchImages": [{"type": "Prefix", "prefix": mirror.upstream}],
                    "rewriteImage": {"prefix": format!("{}/{}", settings.registry_host, mirror.repository_prefix)}
                }
            });
            Planned {
                name: image_config_resource_name(&mirror.upstream),
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
                Json::String(package_reference(settings, node)),
            );
            if settings.strategy == Strategy::Skip {
                // Every dependency is composed here, from ECR; Crossplane's
                // resolver would fetch them from upstream instead.
                spec.insert("skipDependencyResolution".to_string(), json!(true));
            }
            // Set, not left to Crossplane's default, so that a change of
            // the default cannot take away the revision to roll back to.
            spec.insert(
                "revisionHistoryLimit".to_string(),
                json!(settings.revision_history_limit.get()),
            );
            if let Some(policy) = settings.package_pull_policy {
                spec.insert("packagePullPolicy".to_string(), json!(policy.as_str()));
            }
            if !settings.common_labels.is_empty() {
                let labels: Map<String, Json> = settings
                    .common_labels
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect();
                spec.insert("commonLabels".to_string(), Json::Object(labels));
            }
            if settings.ignore_crossplane_constraints {
                spec.insert("ignoreCrossplaneConstraints".to_string(), json!(true));
            }
            if let Some(runtime) = &node.runtime_config_name
                && node.kind != PackageKind::Configuration
            {
                spec.insert("runtimeConfigRef".to_string(), json!({"name": runtime}));
            }
            // Built in place: `json!` would copy `spec` whole once more.
            let mut metadata = Map::new();
            metadata.insert("name".to_string(), Json::String(node.name.clone()));
            let mut object = Map::new();
            object.insert("apiVersion".to_string(), json!("pkg.crossplane.io/v1"));
            object.insert("kind".to_string(), json!(node.kind.as_str()));
            object.insert("metadata".to_string(), Json::Object(metadata));
            object.insert("spec".to_string(), Json::Object(spec));
            Ok(Planned {
                name: package_resource_name(&node.name),
                object,
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
    Err(DependencyError::SplitFamily {
        provider: node.repository.clone(),
        dependency: dep.repository.clone(),
        provider_segment: first(&node.repository),
        dependency_segment: first(&dep.repository),
    }
    .into())
}

pub(super) fn into_map(value: Json) -> Map<String, Json> {
    match value {
        Json::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::is_label;

    #[test]
    fn package_resource_names_are_labels() {
        assert_eq!(
            package_resource_name("upbound-provider-family-aws"),
            "package-upbound-provider-family-aws"
        );
        let short = "a".repeat(55);
        assert_eq!(package_resource_name(&short), format!("package-{short}"));
        assert_eq!(
            package_name(&package_resource_name(&short)),
            Some(short.as_str())
        );
        let long = "b".repeat(63);
        let resource = package_resource_name(&long);
        assert!(
            is_label(&resource) && resource.starts_with(PACKAGE_PREFIX),
            "{resource}"
        );
        assert_ne!(resource, package_resource_name(&"b".repeat(62)));
        let names = [short.as_str(), long.as_str()];
        let known = PackageNames::of(names);
        assert_eq!(known.name_of(&resource), Some(long.as_str()));
        assert_eq!(known.name_of("image-config-x"), None);
        assert!(crate::compose::is_owned(&resource));
    }

    #[test]
    fn image_config_names() {
        for (upstream, object, resource) in [
            (
                "xpkg.upbound.io/",
                "ecr-mirror-xpkg-upbound-io",
                "image-config-xpkg-upbound-io",
            ),
            (
                "xpkg.crossplane.io/",
                "ecr-mirror-xpkg-crossplane-io",
                "image-config-xpkg-crossplane-io",
            ),
        ] {
            assert_eq!(image_config_name(upstream), object);
            assert_eq!(image_config_resource_name(upstream), resource);
        }
        // Prefixes that fold together keep apart; long ones are cut.
        let distinct = [
            "xpkg.upbound.io/",
            "xpkg.upbound.io",
            "xpkg.upbound.io/upbound/",
            "xpkg.upbound.io/upbound-",
            "xpkg-upbound.io/",
            "Xpkg.upbound.io/",
            "localhost:5000/",
            "localhost-5000/",
        ];
        let mut names: Vec<String> = distinct.iter().map(|u| image_config_name(u)).collect();
        names.push(image_config_name(&format!("{}/", "r.".repeat(200))));
        for name in &names {
            assert!(is_label(name), "{name}");
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), distinct.len() + 1);
    }

    #[test]
    fn package_references_by_strategy_and_pinning() {
        use crate::resolve::graph::PackageNode;
        use crate::sdk::request::decode;
        use crate::spec::policy::Origin;
        use crate::spec::xr::XrRef;
        use crate::spec::{Input, XrSpec};
        let digest = format!("sha256:{}", "a".repeat(64));
        let node = |version: &str| PackageNode {
            repository: "upbound/provider-aws-s3".to_string(),
            kind: PackageKind::Provider,
            upstream: "xpkg.upbound.io/upbound/provider-aws-s3".to_string(),
            name: "upbound-provider-aws-s3".to_string(),
            version: version.to_string(),
            digest: digest.clone(),
            depends_on: Default::default(),
            runtime_config_name: None,
        };
        let ecr = "111122223333.dkr.ecr.eu-west-2.amazonaws.com/upbound/provider-aws-s3";
        let upstream = "xpkg.upbound.io/upbound/provider-aws-s3";
        for (strategy, pin, version, want) in [
            ("Rewrite", false, "v2.2.0", format!("{upstream}:v2.2.0")),
            ("Rewrite", true, "v2.2.0", format!("{upstream}@{digest}")),
            (
                "Rewrite",
                false,
                digest.as_str(),
                format!("{upstream}@{digest}"),
            ),
            ("Skip", false, "v2.2.0", format!("{ecr}:v2.2.0")),
            ("Skip", true, "v2.2.0", format!("{ecr}@{digest}")),
        ] {
            let spec: XrSpec = decode(serde_json::json!({
                "registry": {"accountId": "111122223333", "region": "eu-west-2"},
                "packages": [{"kind": "Provider", "repository": "upbound/provider-aws-s3", "version": "v2.2.0"}],
                "strategy": strategy
            }))
            .expect("spec");
            let input: Input = decode(serde_json::json!({"pinDigests": pin})).expect("input");
            let settings =
                Settings::with_origin(XrRef::named("demo"), &spec, &input, Origin::Platform)
                    .expect("settings");
            assert_eq!(
                package_reference(&settings, &node(version)),
                want,
                "{strategy}, pinned: {pin}, version {version}"
            );
        }
    }
}
