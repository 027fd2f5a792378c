//! Version resolution: from the packages an XR asks for to the full,
//! dependency-closed set Crossplane must install, read from the registry.
//!
//! Resolution runs to a fixed point. Each round selects a version for every
//! package currently wanted (the XR's packages plus everything their selected
//! versions depend on), then reads the metadata of newly selected images. A
//! new dependency or a changed selection starts another round; a stable round
//! ends it. The registry is behind a cache, so repeated rounds cost nothing.

pub mod graph;
mod installed;

pub use self::installed::Installed;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::error::{DependencyError, Error, Result};
use crate::names::{dns_label, repository_path};
use crate::package::{PackageKind, PackageMeta};
use crate::registry::credentials::AwsCredentials;
use crate::registry::{Connector, Registry};
use crate::resolve::graph::{Graph, PackageNode};
use crate::spec::limits::MAX_STATUS_PACKAGES;
use crate::spec::{Settings, XrSpec};
use crate::version::{Constraint, VersionSpec, parse_tag, select_highest};

/// Enough for any real dependency chain; a graph still changing after this
/// many rounds is oscillating between constraint sets.
const MAX_ROUNDS: usize = 32;

/// Independent registry lookups in flight at once.
const CONCURRENCY: usize = 8;

/// A version requirement and who placed it, for error messages.
#[derive(Clone, Debug, PartialEq)]
struct Requirement {
    spec: VersionSpec,
    source: String,
}

/// What the XR's `version` field asks for. Unlike `dependsOn`, a top-level
/// version may name any existing tag (a package object's `spec.package`
/// takes a tag as is), so a tag that exists is used verbatim before the
/// string is read as a constraint.
#[derive(Clone, Debug)]
enum Requested {
    Tag(String),
    Spec(VersionSpec),
}

/// A package that is wanted this round.
#[derive(Clone, Debug, PartialEq)]
struct Wanted {
    kind: PackageKind,
    /// The reverse mirror mapping of a listed repository; `None` for a
    /// package only its dependents name.
    mirrored: Option<String>,
    /// The upstream paths its dependents declare for it.
    declared: BTreeSet<String>,
    /// Index into `spec.packages` when the user listed it.
    listed: Option<usize>,
    /// Constraints placed by the packages that depend on it.
    requirements: Vec<Requirement>,
}

impl Wanted {
    /// The path the package is referenced by. A declared path wins, since
    /// it is the one Crossplane's Lock looks for; of several, the least, so
    /// neither the dependents' order nor their names matter.
    fn upstream(&self) -> &str {
        self.declared
            .first()
            .or(self.mirrored.as_ref())
            .map_or("", String::as_str)
    }
}

/// The version chosen for a repository and the image it names.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Selection {
    version: String,
    digest: String,
}

/// A dependency edge read from a package's metadata.
#[derive(Clone, Debug)]
struct Edge {
    repository: String,
    kind: PackageKind,
    upstream: String,
    requirement: Requirement,
}

/// The outcome of a resolution: the install graph, and the installed
/// dependencies it keeps at their last known version because they no
/// longer resolve.
#[derive(Debug, Default)]
pub struct Resolution {
    pub graph: Graph,
    pub kept: Vec<Kept>,
}

/// An installed dependency kept at its last known version.
#[derive(Debug)]
pub struct Kept {
    pub name: String,
    pub version: String,
    /// Why it no longer resolves.
    pub reason: Error,
}

impl std::fmt::Display for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "keeping installed dependency {} at {}: {}",
            self.name, self.version, self.reason
        )
    }
}

/// Resolves `spec` against the registry `settings` name, reached through
/// `connector`, within `deadline`: what both a RunFunction call and
/// `bootstrap` do. `installed` holds the remembered packages that exist in
/// the cluster (validated); a dependency among them that no longer
/// resolves is kept as it is rather than failing the whole XR. `bootstrap`
/// has none.
pub async fn resolve_within(
    connector: &dyn Connector,
    settings: &Settings,
    spec: &XrSpec,
    installed: Option<&dyn Installed>,
    credentials: Option<&AwsCredentials>,
    deadline: Duration,
) -> Result<Resolution> {
    let work = async {
        let registry = connector
            .connect(&settings.registry, credentials, settings.tag_cache_ttl)
            .await?;
        Resolver::new(settings, spec, registry.as_ref())
            .keeping(installed)
            .resolve()
            .await
    };
    tokio::time::timeout(deadline, work)
        .await
        .map_err(|_| Error::DeadlineExceeded {
            seconds: deadline.as_secs(),
        })?
}

pub struct Resolver<'a> {
    settings: &'a Settings,
    spec: &'a XrSpec,
    registry: &'a dyn Registry,
    installed: Option<&'a dyn Installed>,
}

impl<'a> Resolver<'a> {
    pub fn new(settings: &'a Settings, spec: &'a XrSpec, registry: &'a dyn Registry) -> Self {
        Self {
            settings,
            spec,
            registry,
            installed: None,
        }
    }

    /// Installed packages that may stand in for dependencies that no
    /// longer resolve.
    pub fn keeping(mut self, installed: Option<&'a dyn Installed>) -> Self {
        self.installed = installed;
        self
    }

    pub async fn resolve(&self) -> Result<Resolution> {
        let mut selected: BTreeMap<String, Selection> = BTreeMap::new();
        // Metadata by digest; a digest's dependencies never change.
        let mut edges: HashMap<String, Vec<Edge>> = HashMap::new();
        // Each repository's selection, and what it was selected for: a
        // repository wanted exactly as in the round before is not asked
        // about again (most are, in every round after the first).
        let mut chosen: HashMap<String, (Wanted, Selection, Option<Error>)> = HashMap::new();
        for _ in 0..MAX_ROUNDS {
            let wanted = self.wanted(&selected, &edges)?;
            // Owned items: futures borrowing from the iterator would not be
            // Send across the gRPC handler's await points.
            let changed: Vec<(String, Wanted)> = wanted
                .iter()
                .filter(|(r, w)| chosen.get(*r).is_none_or(|(before, ..)| before != *w))
                .map(|(r, w)| (r.clone(), w.clone()))
                .collect();
            let fresh: Vec<(String, Wanted, Selection, Option<Error>)> = stream::iter(changed)
                .map(|(repository, w)| async move {
                    match self.select(&repository, &w).await {
                        Ok(selection) => Ok((repository, w, selection, None)),
                        Err(error) => match self.kept(&repository, &w, &error) {
                            Some(selection) => Ok((repository, w, selection, Some(error))),
                            None => Err(required_by(&w, error)),
                        },
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .try_collect()
                .await?;
            for (repository, w, selection, failure) in fresh {
                chosen.insert(repository, (w, selection, failure));
            }
            let outcomes = wanted.keys().filter_map(|repository| {
                let (_, selection, failure) = chosen.get(repository)?;
                Some((repository.clone(), selection.clone(), failure.clone()))
            });
            let mut kept: BTreeMap<String, Error> = BTreeMap::new();
            let mut picks: BTreeMap<String, Selection> = BTreeMap::new();
            for (repository, selection, failure) in outcomes {
                if let Some(error) = failure {
                    // Its metadata cannot be read; what it depended on when
                    // it was installed stays pinned at what is installed.
                    edges
                        .entry(selection.digest.clone())
                        .or_insert_with(|| self.remembered_edges(&repository));
                    kept.insert(repository.clone(), error);
                }
                picks.insert(repository, selection);
            }
            let unread: Vec<(String, PackageKind, Selection)> = picks
                .iter()
                .filter(|(_, s)| {
                    self.settings.resolve_dependencies && !edges.contains_key(&s.digest)
                })
                .map(|(r, s)| (r.clone(), wanted[r].kind, s.clone()))
                .collect();
            let read: Vec<(String, Vec<Edge>)> = stream::iter(unread)
                .map(|(repository, kind, selection)| async move {
                    let meta = self
                        .registry
                        .package_meta(&repository, &selection.digest)
                        .await?;
                    let edges = self.edges(&repository, kind, &selection, &meta)?;
                    Ok::<_, Error>((selection.digest, edges))
                })
                .buffer_unordered(CONCURRENCY)
                .try_collect()
                .await?;
            let stable = picks == selected && read.is_empty();
            edges.extend(read);
            selected = picks;
            if stable {
                let graph = self.graph(&wanted, &selected, &edges)?;
                let kept = kept
                    .into_iter()
                    .filter_map(|(repository, reason)| {
                        let node = graph.get(&repository)?;
                        Some(Kept {
                            name: node.name.clone(),
                            version: node.version.clone(),
                            reason,
                        })
                    })
                    .collect();
                return Ok(Resolution { graph, kept });
            }
        }
        Err(DependencyError::Unsettled { rounds: MAX_ROUNDS }.into())
    }

    /// The XR's packages plus everything the current selections depend on.
    fn wanted(
        &self,
        selected: &BTreeMap<String, Selection>,
        edges: &HashMap<String, Vec<Edge>>,
    ) -> Result<BTreeMap<String, Wanted>> {
        let mut wanted: BTreeMap<String, Wanted> = BTreeMap::new();
        let mut queue: Vec<String> = Vec::new();
        for (i, package) in self.spec.packages.iter().enumerate() {
            let upstream = self
                .settings
                .upstream_for(&package.repository)
                .map(|(u, _)| u)
                .ok_or_else(|| DependencyError::NoMirrorPrefix {
                    field: format!("spec.packages[{i}]"),
                    repository: package.repository.clone(),
                    prefixes: self.mirror_prefixes(),
                })?;
            self.check_allowed(&package.repository, &format!("spec.packages[{i}]"))?;
            wanted.insert(
                package.repository.clone(),
                Wanted {
                    kind: package.kind,
                    mirrored: Some(upstream),
                    declared: BTreeSet::new(),
                    listed: Some(i),
                    requirements: Vec::new(),
                },
            );
            queue.push(package.repository.clone());
        }
        let mut visited: BTreeSet<String> = BTreeSet::new();
        while let Some(repository) = queue.pop() {
            if !visited.insert(repository.clone()) {
                continue;
            }
            let Some(out) = selected.get(&repository).and_then(|s| edges.get(&s.digest)) else {
                continue;
            };
            for edge in out {
                let entry = wanted
                    .entry(edge.repository.clone())
                    .or_insert_with(|| Wanted {
                        kind: edge.kind,
                        mirrored: None,
                        declared: BTreeSet::new(),
                        listed: None,
                        requirements: Vec::new(),
                    });
                if entry.kind != edge.kind {
                    return Err(DependencyError::KindConflict {
                        dependent: edge.requirement.source.clone(),
                        repository: edge.repository.clone(),
                        declared: edge.kind,
                        wanted: entry.kind,
                    }
                    .into());
                }
                // The path a dependency declares is the one Crossplane's Lock
                // will look for, so it wins over our reverse mirror mapping.
                entry.declared.insert(edge.upstream.clone());
                entry.requirements.push(edge.requirement.clone());
                queue.push(edge.repository.clone());
            }
            if wanted.len() > MAX_STATUS_PACKAGES {
                return Err(DependencyError::TooMany {
                    max: MAX_STATUS_PACKAGES,
                }
                .into());
            }
        }
        Ok(wanted)
    }

    /// Chooses the version of one wanted package.
    async fn select(&self, repository: &str, wanted: &Wanted) -> Result<Selection> {
        let requested = match wanted.listed {
            Some(i) => Some(self.requested(repository, i).await?),
            None => None,
        };
        let digest_pins: BTreeSet<&str> = wanted
            .requirements
            .iter()
            .filter_map(|r| match &r.spec {
                VersionSpec::Digest(d) => Some(d.as_str()),
                VersionSpec::Constraint(_) => None,
            })
            .collect();
        let constraints: Vec<&Constraint> = wanted
            .requirements
            .iter()
            .filter_map(|r| match &r.spec {
                VersionSpec::Constraint(c) => Some(c),
                VersionSpec::Digest(_) => None,
            })
            .collect();

        let version = match requested {
            Some(Requested::Spec(VersionSpec::Digest(digest))) => digest,
            Some(Requested::Tag(tag)) => {
                let satisfies =
                    parse_tag(&tag).is_some_and(|v| constraints.iter().all(|c| c.matches(&v)));
                if !constraints.is_empty() && !satisfies {
                    return Err(self.unsatisfiable(repository, wanted, Some(&tag)));
                }
                tag
            }
            Some(Requested::Spec(VersionSpec::Constraint(own))) => {
                let mut all = constraints.clone();
                all.push(&own);
                self.highest(repository, &all)
                    .await?
                    .ok_or_else(|| self.unsatisfiable(repository, wanted, Some(own.as_str())))?
            }
            None if digest_pins.len() > 1 => {
                return Err(self.unsatisfiable(repository, wanted, None));
            }
            None => match digest_pins.first() {
                Some(digest) => digest.to_string(),
                None => self
                    .highest(repository, &constraints)
                    .await?
                    .ok_or_else(|| self.unsatisfiable(repository, wanted, None))?,
            },
        };
        let digest = self.registry.resolve_digest(repository, &version).await?;
        Ok(Selection { version, digest })
    }

    /// The installed selection that stands in for a dependency that failed
    /// to resolve, if it may: only dependencies (what the XR lists is the
    /// user's to fix), only installed ones, and only for failures that say
    /// the package is gone or unreadable, not that AWS is down (then the
    /// whole last resolved set is kept instead).
    fn kept(&self, repository: &str, wanted: &Wanted, error: &Error) -> Option<Selection> {
        let gone = matches!(
            error,
            Error::RepositoryNotFound { .. }
                | Error::EmptyRepository { .. }
                | Error::ImageNotFound { .. }
                | Error::InvalidPackage { .. }
                | Error::Credentials(_)
                | Error::AccessDenied { .. }
        );
        if wanted.listed.is_some() || !gone {
            return None;
        }
        let node = self.installed?.get(repository)?;
        (node.kind == wanted.kind).then(|| Selection {
            version: node.version.clone(),
            digest: node.digest.clone(),
        })
    }

    /// The dependencies of a kept package as it was installed, each pinned
    /// to the digest that is installed.
    fn remembered_edges(&self, repository: &str) -> Vec<Edge> {
        let Some(installed) = self.installed else {
            return Vec::new();
        };
        let Some(node) = installed.get(repository) else {
            return Vec::new();
        };
        node.depends_on
            .iter()
            .filter_map(|dependency| installed.get(dependency))
            .map(|dependency| Edge {
                repository: dependency.repository.clone(),
                kind: dependency.kind,
                upstream: dependency.upstream.clone(),
                requirement: Requirement {
                    spec: VersionSpec::Digest(dependency.digest.clone()),
                    source: format!("{repository}:{} (kept as installed)", node.version),
                },
            })
            .collect()
    }

    async fn requested(&self, repository: &str, index: usize) -> Result<Requested> {
        let text = self.spec.packages[index].version.trim();
        let parsed = VersionSpec::parse(text);
        if let Ok(VersionSpec::Digest(_)) = parsed {
            return parsed.map(Requested::Spec);
        }
        let tags = self.registry.list_tags(repository).await?;
        if tags.iter().any(|t| t == text) {
            return Ok(Requested::Tag(text.to_string()));
        }
        parsed.map(Requested::Spec).map_err(|e| match e {
            Error::InvalidConstraint { message, .. } => Error::InvalidSpec {
                field: format!("spec.packages[{index}].version"),
                message: format!(
                    "{text:?} is neither a tag of {repository} nor a valid constraint: {message}"
                ),
            },
            other => other,
        })
    }

    async fn highest(
        &self,
        repository: &str,
        constraints: &[&Constraint],
    ) -> Result<Option<String>> {
        let tags = self.registry.list_tags(repository).await?;
        if tags.is_empty() {
            return Err(Error::EmptyRepository {
                registry: self.settings.registry.to_string(),
                repository: repository.to_string(),
            });
        }
        Ok(select_highest(constraints, tags.iter().map(String::as_str)).map(str::to_string))
    }

    fn unsatisfiable(&self, repository: &str, wanted: &Wanted, own: Option<&str>) -> Error {
        let mut parts: Vec<String> = Vec::new();
        if let (Some(i), Some(own)) = (wanted.listed, own) {
            parts.push(format!("{own:?} (spec.packages[{i}])"));
        }
        parts.extend(
            wanted
                .requirements
                .iter()
                .map(|r| format!("{:?} (required by {})", r.spec.to_string(), r.source)),
        );
        Error::Unsatisfiable {
            repository: repository.to_string(),
            constraints: parts.join(" and "),
        }
    }

    /// Reads one package's dependencies, mapped into ECR through the mirrors.
    fn edges(
        &self,
        repository: &str,
        kind: PackageKind,
        selection: &Selection,
        meta: &PackageMeta,
    ) -> Result<Vec<Edge>> {
        let source = format!("{repository}:{}", selection.version);
        if let Some(actual) = meta.kind
            && actual != kind
        {
            return Err(DependencyError::WrongKind {
                package: source,
                actual,
                wanted: kind,
            }
            .into());
        }
        meta.depends_on
            .iter()
            .map(|dependency| {
                let (dep_repository, _) = self
                    .settings
                    .repository_for(&dependency.package)
                    .ok_or_else(|| DependencyError::OutsideMirrors {
                        dependency: dependency.package.clone(),
                        dependent: source.clone(),
                        upstreams: self.mirror_upstreams(),
                    })?;
                self.check_allowed(&dep_repository, &format!("a dependency of {source}"))?;
                // As in Crossplane, an empty version is no constraint at all
                // but an error: the package author must say what they need.
                let spec = VersionSpec::parse(dependency.version.trim()).map_err(|e| {
                    DependencyError::InvalidVersion {
                        dependent: source.clone(),
                        dependency: dependency.package.clone(),
                        reason: Box::new(e),
                    }
                })?;
                Ok(Edge {
                    repository: dep_repository,
                    kind: dependency.kind,
                    upstream: dependency.package.clone(),
                    requirement: Requirement {
                        spec,
                        source: source.clone(),
                    },
                })
            })
            .collect()
    }

    fn check_allowed(&self, repository: &str, source: &str) -> Result<()> {
        if self.settings.is_allowed(repository) {
            return Ok(());
        }
        Err(DependencyError::NotAllowed {
            repository: repository.to_string(),
            wanted_by: source.to_string(),
            allowed: self.settings.allowed_repositories.join(", "),
        }
        .into())
    }

    fn mirror_prefixes(&self) -> String {
        let prefixes: Vec<String> = self
            .settings
            .mirrors
            .iter()
            .map(|m| format!("{:?}", m.repository_prefix))
            .collect();
        prefixes.join(", ")
    }

    fn mirror_upstreams(&self) -> String {
        let upstreams: Vec<&str> = self
            .settings
            .mirrors
            .iter()
            .map(|m| m.upstream.as_str())
            .collect();
        upstreams.join(", ")
    }

    fn graph(
        &self,
        wanted: &BTreeMap<String, Wanted>,
        selected: &BTreeMap<String, Selection>,
        edges: &HashMap<String, Vec<Edge>>,
    ) -> Result<Graph> {
        let nodes = wanted.iter().filter_map(|(repository, w)| {
            let selection = selected.get(repository)?;
            let listed = w.listed.map(|i| &self.spec.packages[i]);
            Some(PackageNode {
                repository: repository.clone(),
                kind: w.kind,
                upstream: w.upstream().to_string(),
                name: listed
                    .and_then(|p| p.name.clone())
                    .unwrap_or_else(|| dns_label(repository_path(w.upstream()))),
                version: selection.version.clone(),
                digest: selection.digest.clone(),
                depends_on: edges
                    .get(&selection.digest)
                    .map(|out| out.iter().map(|e| e.repository.clone()).collect())
                    .unwrap_or_default(),
                runtime_config_name: listed.and_then(|p| p.runtime_config_name.clone()),
            })
        });
        Graph::new(nodes)
    }
}

/// A dependency that is not in the registry is named with the packages that
/// asked for it: the repository alone does not say which package to fix.
fn required_by(wanted: &Wanted, error: Error) -> Error {
    match error {
        Error::RepositoryNotFound { .. }
        | Error::EmptyRepository { .. }
        | Error::ImageNotFound { .. }
            if wanted.listed.is_none() && !wanted.requirements.is_empty() =>
        {
            let parents: Vec<&str> = wanted
                .requirements
                .iter()
                .map(|r| r.source.as_str())
                .collect();
            DependencyError::RequiredBy {
                missing: Box::new(error),
                parents: parents.join(", "),
            }
            .into()
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::memory::{MemoryRegistry, meta};
    use crate::sdk::request::decode;
    use crate::spec::Input;
    use serde_json::{Value as Json, json};

    const FAMILY: &str = "xpkg.upbound.io/upbound/provider-family-aws";
    const PAT: &str = "crossplane-contrib/function-patch-and-transform";

    /// The blog case: provider-aws-s3 depends on the family provider.
    fn blog_registry() -> MemoryRegistry {
        let registry = MemoryRegistry::new();
        for tag in ["v2.1.0", "v2.2.0", "v2.3.0-rc.1", "v2", "latest"] {
            registry.push(
                "upbound/provider-family-aws",
                tag,
                meta(PackageKind::Provider, &[]),
            );
        }
        for tag in ["v2.1.0", "v2.2.0"] {
            registry.push("upbound/provider-aws-s3", tag, needs_family(">= 0.0.0"));
        }
        for tag in ["v0.8.1", "v0.8.2"] {
            registry.push(PAT, tag, meta(PackageKind::Function, &[]));
        }
        registry
    }

    /// A Provider that depends on the family provider at `constraint`.
    fn needs_family(constraint: &str) -> PackageMeta {
        meta(
            PackageKind::Provider,
            &[(FAMILY, PackageKind::Provider, constraint)],
        )
    }

    /// An entry of `spec.packages`.
    fn package(kind: &str, repository: &str, version: &str) -> Json {
        json!({"kind": kind, "repository": repository, "version": version})
    }

    async fn resolve(registry: &MemoryRegistry, packages: Json, input: Json) -> Result<Graph> {
        let spec: XrSpec = decode(json!({
            "registry": {"accountId": "123456789012", "region": "eu-west-2"},
            "packages": packages,
        }))
        .expect("spec");
        let input: Input = decode(input).expect("input");
        let settings =
            Settings::new(crate::spec::xr::XrRef::named("demo"), &spec, &input).expect("settings");
        Resolver::new(&settings, &spec, registry)
            .resolve()
            .await
            .map(|r| r.graph)
    }

    /// [`resolve`] with the default input, which must succeed.
    async fn resolved(registry: &MemoryRegistry, packages: Json) -> Graph {
        resolve(registry, packages, json!({}))
            .await
            .expect("resolves")
    }

    /// The version resolved for `repository`, if it is in the graph.
    fn version_of<'g>(graph: &'g Graph, repository: &str) -> Option<&'g str> {
        graph.get(repository).map(|n| n.version.as_str())
    }

    fn versions(graph: &Graph) -> Vec<(String, String, Vec<String>)> {
        graph
            .install_order()
            .into_iter()
            .map(|n| {
                (
                    n.name.clone(),
                    n.version.clone(),
                    n.depends_on.iter().cloned().collect(),
                )
            })
            .collect()
    }

    fn row(name: &str, version: &str, deps: &[&str]) -> (String, String, Vec<String>) {
        (
            name.to_string(),
            version.to_string(),
            deps.iter().map(|d| d.to_string()).collect(),
        )
    }

    /// A package wanted exactly as in the round before is not asked about
    /// again: a chain four deep takes five rounds, and each package is
    /// still read once (its tags, its digest, its metadata; the listed one's
    /// tags twice, to see whether its version names a tag and to select).
    #[tokio::test]
    async fn each_package_is_read_once_however_many_rounds() {
        let registry = MemoryRegistry::new();
        let chain = ["chain/a", "chain/b", "chain/c", "chain/d"];
        for pair in chain.windows(2) {
            let next = format!("xpkg.upbound.io/{}", pair[1]);
            let declares = [(next.as_str(), PackageKind::Provider, ">=v1.0.0")];
            registry.push(pair[0], "v1.0.0", meta(PackageKind::Provider, &declares));
        }
        registry.push("chain/d", "v1.0.0", meta(PackageKind::Provider, &[]));
        let graph = resolved(
            &registry,
            json!([package("Provider", "chain/a", ">=v1.0.0")]),
        )
        .await;
        assert_eq!(graph.nodes().count(), 4);
        assert_eq!(registry.calls(), 3 * chain.len() + 1);
    }

    #[tokio::test]
    async fn a_closure_larger_than_a_status_can_hold_is_refused() {
        let registry = MemoryRegistry::new();
        let deps: Vec<String> = (0..=MAX_STATUS_PACKAGES)
            .map(|i| format!("xpkg.upbound.io/many/dep-{i}"))
            .collect();
        for i in 0..=MAX_STATUS_PACKAGES {
            registry.push(
                &format!("many/dep-{i}"),
                "v1.0.0",
                meta(PackageKind::Provider, &[]),
            );
        }
        let edges: Vec<(&str, PackageKind, &str)> = deps
            .iter()
            .map(|d| (d.as_str(), PackageKind::Provider, ">=v1.0.0"))
            .collect();
        registry.push(
            "many/root",
            "v1.0.0",
            meta(PackageKind::Configuration, &edges),
        );
        let error = resolve(
            &registry,
            json!([package("Configuration", "many/root", "v1.0.0")]),
            json!({}),
        )
        .await
        .expect_err("too many");
        assert!(error.to_string().contains("more than 2048"), "{error}");
    }

    #[tokio::test]
    async fn blog_case_with_implicit_family_version() {
        let registry = blog_registry();
        let graph = resolved(
            &registry,
            json!([
                package("Provider", "upbound/provider-aws-s3", ">=v2.0.0"),
                package("Function", PAT, "v0.8.2")
            ]),
        )
        .await;
        assert_eq!(
            versions(&graph),
            vec![
                row(
                    "crossplane-contrib-function-patch-and-transform",
                    "v0.8.2",
                    &[]
                ),
                row("upbound-provider-family-aws", "v2.2.0", &[]),
                row(
                    "upbound-provider-aws-s3",
                    "v2.2.0",
                    &["upbound/provider-family-aws"]
                ),
            ]
        );
        let family = graph.get("upbound/provider-family-aws").expect("family");
        assert_eq!(family.upstream, FAMILY);
        assert_eq!(family.kind, PackageKind::Provider);
        assert!(family.digest.starts_with("sha256:"));
    }

    #[tokio::test]
    async fn an_explicit_version_wins_when_it_satisfies() {
        let registry = blog_registry();
        let graph = resolved(
            &registry,
            json!([
                package("Provider", "upbound/provider-family-aws", "v2.1.0"),
                package("Provider", "upbound/provider-aws-s3", "v2.2.0")
            ]),
        )
        .await;
        assert_eq!(
            version_of(&graph, "upbound/provider-family-aws"),
            Some("v2.1.0")
        );
    }

    #[tokio::test]
    async fn exact_tags_need_not_be_semver() {
        let registry = blog_registry();
        let graph = resolved(
            &registry,
            json!([package("Provider", "upbound/provider-family-aws", "latest")]),
        )
        .await;
        assert_eq!(
            version_of(&graph, "upbound/provider-family-aws"),
            Some("latest")
        );
    }

    #[tokio::test]
    async fn prereleases_only_when_admitted() {
        let registry = blog_registry();
        for (constraint, expected) in [
            (">=v2.0.0", "v2.2.0"),
            (">= 0.0.0-0", "v2.3.0-rc.1"),
            ("~2.1", "v2.1.0"),
        ] {
            let graph = resolved(
                &registry,
                json!([package(
                    "Provider",
                    "upbound/provider-family-aws",
                    constraint
                )]),
            )
            .await;
            assert_eq!(
                version_of(&graph, "upbound/provider-family-aws"),
                Some(expected),
                "{constraint}"
            );
        }
    }

    #[tokio::test]
    async fn digests_pin() {
        let registry = blog_registry();
        let digest = registry.push(
            "upbound/provider-family-aws",
            "v9.9.9",
            meta(PackageKind::Provider, &[]),
        );
        let graph = resolved(
            &registry,
            json!([package("Provider", "upbound/provider-family-aws", &digest)]),
        )
        .await;
        let node = graph.get("upbound/provider-family-aws").expect("node");
        assert_eq!(
            (node.version.as_str(), node.digest.as_str()),
            (digest.as_str(), digest.as_str())
        );
    }

    #[tokio::test]
    async fn transitive_chains_resolve_in_order() {
        let registry = blog_registry();
        registry.push(
            "acme/configuration-platform",
            "v1.0.0",
            meta(
                PackageKind::Configuration,
                &[
                    (
                        "xpkg.upbound.io/upbound/provider-aws-s3",
                        PackageKind::Provider,
                        ">=v2.1.0",
                    ),
                    (
                        "xpkg.crossplane.io/crossplane-contrib/function-patch-and-transform",
                        PackageKind::Function,
                        "<v0.8.2",
                    ),
                ],
            ),
        );
        let graph = resolved(
            &registry,
            json!([package(
                "Configuration",
                "acme/configuration-platform",
                "v1.0.0"
            )]),
        )
        .await;
        assert_eq!(
            versions(&graph),
            vec![
                row(
                    "crossplane-contrib-function-patch-and-transform",
                    "v0.8.1",
                    &[]
                ),
                row("upbound-provider-family-aws", "v2.2.0", &[]),
                row(
                    "upbound-provider-aws-s3",
                    "v2.2.0",
                    &["upbound/provider-family-aws"]
                ),
                row(
                    "acme-configuration-platform",
                    "v1.0.0",
                    &[
                        "crossplane-contrib/function-patch-and-transform",
                        "upbound/provider-aws-s3"
                    ]
                ),
            ]
        );
        // A dependency keeps the upstream path its parent declared.
        assert_eq!(
            graph.get(PAT).map(|n| n.upstream.as_str()),
            Some("xpkg.crossplane.io/crossplane-contrib/function-patch-and-transform")
        );
    }

    #[tokio::test]
    async fn constraints_from_several_parents_must_all_hold() {
        let registry = blog_registry();
        registry.push("acme/provider-a", "v1.0.0", needs_family("<v2.2.0"));
        registry.push("acme/provider-b", "v1.0.0", needs_family(">=v2.0.0"));
        registry.push("acme/provider-c", "v1.0.0", needs_family(">=v2.2.0"));
        let graph = resolved(
            &registry,
            json!([
                package("Provider", "acme/provider-a", "v1.0.0"),
                package("Provider", "acme/provider-b", "v1.0.0")
            ]),
        )
        .await;
        assert_eq!(
            version_of(&graph, "upbound/provider-family-aws"),
            Some("v2.1.0")
        );

        let err = resolve(
            &registry,
            json!([
                package("Provider", "acme/provider-a", "v1.0.0"),
                package("Provider", "acme/provider-c", "v1.0.0")
            ]),
            json!({}),
        )
        .await
        .unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, Error::Unsatisfiable { .. }), "{message}");
        for part in [
            "upbound/provider-family-aws",
            "\"<v2.2.0\" (required by acme/provider-a:v1.0.0)",
            "\">=v2.2.0\" (required by acme/provider-c:v1.0.0)",
        ] {
            assert!(message.contains(part), "{message}");
        }
    }

    #[tokio::test]
    async fn an_explicit_version_that_breaks_a_parent_constraint_is_refused() {
        let registry = blog_registry();
        registry.push("acme/provider-c", "v1.0.0", needs_family(">=v2.2.0"));
        let err = resolve(
            &registry,
            json!([
                package("Provider", "upbound/provider-family-aws", "v2.1.0"),
                package("Provider", "acme/provider-c", "v1.0.0")
            ]),
            json!({}),
        )
        .await
        .unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(">=v2.2.0\" (required by acme/provider-c:v1.0.0)"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn cycles_are_fatal_and_named() {
        let registry = MemoryRegistry::new();
        registry.push(
            "acme/a",
            "v1.0.0",
            meta(
                PackageKind::Provider,
                &[("xpkg.upbound.io/acme/b", PackageKind::Provider, ">=1.0.0")],
            ),
        );
        registry.push(
            "acme/b",
            "v1.0.0",
            meta(
                PackageKind::Provider,
                &[("xpkg.upbound.io/acme/a", PackageKind::Provider, ">=1.0.0")],
            ),
        );
        let err = resolve(
            &registry,
            json!([package("Provider", "acme/a", "v1.0.0")]),
            json!({}),
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "dependency cycle: acme/a (v1.0.0) -> acme/b (v1.0.0) -> acme/a (v1.0.0)"
        );
    }

    #[tokio::test]
    async fn bad_dependencies_are_named_with_their_parent() {
        let registry = MemoryRegistry::new();
        registry.push(
            "acme/outside",
            "v1.0.0",
            meta(
                PackageKind::Provider,
                &[(
                    "ghcr.io/someone/provider-x",
                    PackageKind::Provider,
                    ">=1.0.0",
                )],
            ),
        );
        registry.push(
            "acme/empty",
            "v1.0.0",
            meta(
                PackageKind::Provider,
                &[("xpkg.upbound.io/acme/x", PackageKind::Provider, "")],
            ),
        );
        registry.push("acme/kind", "v1.0.0", meta(PackageKind::Function, &[]));
        let cases = [
            (
                "acme/outside",
                "Provider",
                json!({}),
                "ghcr.io/someone/provider-x (a dependency of acme/outside:v1.0.0) is outside every mirror",
            ),
            (
                "acme/empty",
                "Provider",
                json!({}),
                "acme/empty:v1.0.0 declares an invalid version for xpkg.upbound.io/acme/x",
            ),
            (
                "acme/kind",
                "Provider",
                json!({}),
                "acme/kind:v1.0.0 is a Function package, but it is wanted as a Provider",
            ),
            (
                "acme/kind",
                "Function",
                json!({"allowedRepositories": ["upbound/*"]}),
                "repository acme/kind (spec.packages[0]) is not in the input's allowedRepositories (upbound/*)",
            ),
            (
                "acme/missing",
                "Provider",
                json!({}),
                "repository \"acme/missing\" not found",
            ),
        ];
        for (repository, kind, input, message) in cases {
            let err = resolve(
                &registry,
                json!([package(kind, repository, ">=1.0.0")]),
                input,
            )
            .await
            .unwrap_err();
            assert!(err.to_string().contains(message), "{repository}: {err}");
        }
    }

    #[tokio::test]
    async fn unknown_versions_are_named() {
        let registry = blog_registry();
        let err = resolve(
            &registry,
            json!([package("Provider", "upbound/provider-family-aws", ">=v9")]),
            json!({}),
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains(
                "no version of upbound/provider-family-aws satisfies \">=v9\" (spec.packages[0])"
            ),
            "{err}"
        );
        let err = resolve(
            &registry,
            json!([package(
                "Provider",
                "upbound/provider-family-aws",
                "not a version!"
            )]),
            json!({}),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidSpec { field, .. } if field == "spec.packages[0].version"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn dependency_resolution_can_be_turned_off() {
        let registry = blog_registry();
        let graph = resolve(
            &registry,
            json!([package("Provider", "upbound/provider-aws-s3", "v2.2.0")]),
            json!({"resolveDependencies": false}),
        )
        .await
        .expect("resolves");
        assert_eq!(
            versions(&graph),
            vec![row("upbound-provider-aws-s3", "v2.2.0", &[])]
        );
    }

    /// Two parents declare the family under different upstream hosts that
    /// both mirror to one repository: whichever order or names they come
    /// in, the family is referenced (and named) the same way.
    #[tokio::test]
    async fn a_dependency_does_not_depend_on_which_parent_pulled_it_in() {
        let registry = blog_registry();
        let declared = [
            FAMILY.to_string(),
            FAMILY.replace("xpkg.upbound.io", "xpkg.crossplane.io"),
        ];
        for (i, path) in declared.iter().enumerate() {
            registry.push(
                &format!("acme/provider-{i}"),
                "v1.0.0",
                meta(
                    PackageKind::Provider,
                    &[(path.as_str(), PackageKind::Provider, ">=v2.0.0")],
                ),
            );
        }
        let mut seen = Vec::new();
        for (first, second, name) in [
            ("acme/provider-0", "acme/provider-1", None),
            ("acme/provider-1", "acme/provider-0", None),
            ("acme/provider-1", "acme/provider-0", Some("renamed-parent")),
        ] {
            let mut packages = json!([
                package("Provider", first, "v1.0.0"),
                package("Provider", second, "v1.0.0")
            ]);
            if let Some(name) = name {
                packages[0]["name"] = json!(name);
            }
            let graph = resolved(&registry, packages).await;
            let family = graph
                .get("upbound/provider-family-aws")
                .expect("family")
                .clone();
            seen.push((family.name, family.upstream));
        }
        assert_eq!(
            seen[0],
            (
                "upbound-provider-family-aws".to_string(),
                "xpkg.crossplane.io/upbound/provider-family-aws".to_string()
            )
        );
        assert!(seen.iter().all(|s| *s == seen[0]), "{seen:?}");
    }
}
