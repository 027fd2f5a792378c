//! The resolver: rounds to a fixed point over the registry (see the
//! module documentation of `resolve`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

// Keyed by repositories and digests, hashed several times per package per
// round: foldhash, not SipHash.
use foldhash::{HashMap, HashSet};

use futures::stream::{self, StreamExt, TryStreamExt};

use super::graph::{Graph, PackageNode};
use super::installed::Installed;
use super::quarantine::Quarantine;
use super::resolution::{Blocked, Kept, Resolution};
use super::select::{Pick, ReadingsCache, Selection, Selector};
use super::specs::SpecsCache;
use super::wanted::{Edge, Repository, Requirement, Wanted};
use crate::error::{DependencyError, Error, Result};
use crate::names::{dns_label, repository_path};
use crate::package::{PackageKind, PackageMeta};
use crate::registry::Registry;
use crate::spec::limits::MAX_STATUS_PACKAGES;
use crate::spec::{Settings, XrSpec};
use crate::version::VersionSpec;

/// Enough for any real dependency chain; a graph still changing after this
/// many rounds is oscillating between constraint sets.
const MAX_ROUNDS: usize = 32;

/// Independent registry lookups in flight at once.
const CONCURRENCY: usize = 8;

/// What a round wants, by repository. Each want is shared: with `listed`
/// until a dependency adds to it, and with the pick made for it, so a round
/// clones pointers and a want unchanged compares equal by pointer.
type Wants = BTreeMap<Repository, Arc<Wanted>>;

/// What a round selected, by repository. The selections are shared with
/// the picks they came from, so a round rebuilds and compares pointers.
type Picks = BTreeMap<Repository, Arc<Selection>>;

/// A repository's pick, and the want it was picked for: a repository
/// wanted exactly as in the round before is not asked about again.
struct Chosen {
    wanted: Arc<Wanted>,
    pick: Pick,
}

/// What the rounds so far have settled.
#[derive(Default)]
struct Progress {
    chosen: HashMap<Repository, Chosen>,
    selected: Picks,
    /// Metadata by digest; a digest's dependencies never change.
    edges: HashMap<String, Vec<Edge>>,
}

/// What one round found beside the selections.
#[derive(Default)]
struct Round {
    /// Nothing changed: the selections are the answer.
    stable: bool,
    /// Installed packages kept as they are, and why.
    kept: BTreeMap<Repository, Error>,
    /// Packages no version of which passes the supply-chain gate.
    blocked: BTreeMap<Repository, Error>,
}

/// Resolves one XR's packages (see the module documentation of `resolve`).
pub struct Resolver<'a> {
    settings: &'a Settings,
    spec: &'a XrSpec,
    registry: &'a dyn Registry,
    installed: Option<&'a dyn Installed>,
    quarantine: Option<&'a Quarantine>,
    /// Constraint readings, shared by every pick of this resolution.
    readings: ReadingsCache,
    /// Dependency versions parsed, shared by every edge read.
    specs: SpecsCache,
}

impl<'a> Resolver<'a> {
    pub fn new(settings: &'a Settings, spec: &'a XrSpec, registry: &'a dyn Registry) -> Self {
        Self {
            settings,
            spec,
            registry,
            installed: None,
            quarantine: None,
            readings: ReadingsCache::default(),
            specs: SpecsCache::default(),
        }
    }

    /// Releases a constraint skips (see `quarantine`).
    pub fn skipping(mut self, quarantine: Option<&'a Quarantine>) -> Self {
        self.quarantine = quarantine;
        self
    }

    /// Installed packages that may stand in for dependencies that no
    /// longer resolve.
    pub fn keeping(mut self, installed: Option<&'a dyn Installed>) -> Self {
        self.installed = installed;
        self
    }

    pub async fn resolve(&self) -> Result<Resolution> {
        let listed = self.listed()?;
        let mut progress = Progress::default();
        for _ in 0..MAX_ROUNDS {
            let wanted = self.wanted(&listed, &progress.selected, &progress.edges)?;
            let round = self.round(&wanted, &mut progress).await?;
            if round.stable {
                return self.resolution(&wanted, &progress, round);
            }
        }
        Err(DependencyError::Unsettled { rounds: MAX_ROUNDS }.into())
    }

    /// What choosing a version reads, for one lookup.
    fn selector(&self) -> Selector<'_> {
        Selector {
            settings: self.settings,
            spec: self.spec,
            registry: self.registry,
            installed: self.installed,
            quarantine: self.quarantine,
            readings: &self.readings,
        }
    }

    /// One round: picks a version for every package wanted otherwise than
    /// in the round before, then reads the metadata of new selections.
    async fn round(&self, wanted: &Wants, progress: &mut Progress) -> Result<Round> {
        // Owned items: futures borrowing from the iterator would not be
        // Send across the gRPC handler's await points.
        let changed: Vec<(Repository, Arc<Wanted>)> = wanted
            .iter()
            .filter(|(r, w)| progress.chosen.get(*r).is_none_or(|c| c.wanted != **w))
            .map(|(r, w)| (r.clone(), w.clone()))
            .collect();
        let selector = self.selector();
        let fresh: Vec<(Repository, Chosen)> = stream::iter(changed)
            .map(|(repository, wanted)| async move {
                let pick = selector.pick(&repository, &wanted).await?;
                Ok::<_, Error>((repository, Chosen { wanted, pick }))
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        progress.chosen.extend(fresh);

        let mut round = Round::default();
        let mut picks = Vec::with_capacity(wanted.len());
        for repository in wanted.keys() {
            match progress.chosen.get(repository).map(|c| &c.pick) {
                Some(Pick::Selected(selection, failure)) => {
                    if let Some(error) = failure {
                        // Its metadata cannot be read; what it depended on
                        // when it was installed stays pinned at that.
                        progress
                            .edges
                            .entry(selection.digest.clone())
                            .or_insert_with(|| self.remembered_edges(repository));
                        round.kept.insert(repository.clone(), error.clone());
                    }
                    picks.push((repository.clone(), selection.clone()));
                }
                Some(Pick::Blocked(error)) => {
                    round.blocked.insert(repository.clone(), error.clone());
                }
                None => {}
            }
        }
        // Already in the map's order: collected, the map is built in one
        // pass rather than searched once a pick.
        let picks: Picks = picks.into_iter().collect();
        let read = self.read_edges(wanted, &picks, &progress.edges).await?;
        round.stable = picks == progress.selected && read.is_empty();
        progress.edges.extend(read);
        progress.selected = picks;
        Ok(round)
    }

    /// The dependency edges of the selections not read yet, by digest.
    async fn read_edges(
        &self,
        wanted: &Wants,
        picks: &Picks,
        edges: &HashMap<String, Vec<Edge>>,
    ) -> Result<Vec<(String, Vec<Edge>)>> {
        let unread: Vec<(Repository, PackageKind, Arc<Selection>)> = picks
            .iter()
            .filter(|(_, s)| self.settings.resolve_dependencies && !edges.contains_key(&s.digest))
            .map(|(r, s)| (r.clone(), wanted[r].kind, s.clone()))
            .collect();
        stream::iter(unread)
            .map(|(repository, kind, selection)| async move {
                let meta = self
                    .registry
                    .package_meta(&repository, &selection.digest)
                    .await?;
                let edges = self.edges(&repository, kind, &selection, &meta)?;
                Ok::<_, Error>((selection.digest.clone(), edges))
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await
    }

    /// What a stable round resolved to.
    fn resolution(&self, wanted: &Wants, progress: &Progress, round: Round) -> Result<Resolution> {
        let Progress {
            selected, edges, ..
        } = progress;
        let waiting = self.waiting(selected, edges, &round.blocked)?;
        let graph = self.graph(wanted, selected, edges, &waiting)?;
        let blocked = self.blocked(wanted, &round.blocked, &waiting, selected, edges);
        let name = |repository: &str| graph.get(repository).map(|node| node.name.clone());
        let kept = round
            .kept
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
        let available = selected
            .iter()
            .filter(|(_, s)| s.available.is_some())
            .filter_map(|(repository, s)| Some((name(repository)?, s.available.clone()?)))
            .collect();
        let warnings = selected
            .values()
            .filter_map(|s| s.dialects.clone())
            .collect();
        let skipped = selected
            .iter()
            .filter(|(_, s)| !s.skipped.is_empty())
            .filter_map(|(repository, s)| Some((name(repository)?, s.skipped.clone())))
            .collect();
        Ok(Resolution {
            graph,
            kept,
            available,
            warnings,
            skipped,
            blocked,
        })
    }

    /// The packages the XR lists, wanted as listed: the same every round.
    fn listed(&self) -> Result<Wants> {
        let mut listed = Wants::new();
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
            self.check_allowed(&package.repository, || format!("spec.packages[{i}]"))?;
            listed.insert(
                Repository::from(package.repository.as_str()),
                Arc::new(Wanted {
                    kind: package.kind,
                    mirrored: Some(upstream),
                    declared: BTreeSet::new(),
                    listed: Some(i),
                    requirements: Vec::new(),
                }),
            );
        }
        Ok(listed)
    }

    /// The XR's packages (`listed`) plus everything the current selections
    /// depend on.
    fn wanted(
        &self,
        listed: &Wants,
        selected: &Picks,
        edges: &HashMap<String, Vec<Edge>>,
    ) -> Result<Wants> {
        let mut wanted = listed.clone();
        // The listed packages in the order the XR lists them, last first.
        let mut queue: Vec<&str> = self
            .spec
            .packages
            .iter()
            .map(|p| p.repository.as_str())
            .collect();
        // About as many as the last round selected: grown once, if at all.
        let mut visited: HashSet<&str> =
            HashSet::with_capacity_and_hasher(listed.len().max(selected.len()), Default::default());
        while let Some(repository) = queue.pop() {
            if !visited.insert(repository) {
                continue;
            }
            let Some(out) = selected.get(repository).and_then(|s| edges.get(&s.digest)) else {
                continue;
            };
            for edge in out {
                want(&mut wanted, edge)?;
                queue.push(&edge.repository);
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
                repository: Repository::from(dependency.repository.as_str()),
                kind: dependency.kind,
                upstream: Arc::from(dependency.upstream.as_str()),
                requirement: Arc::new(Requirement {
                    spec: VersionSpec::Digest(dependency.digest.clone()),
                    source: format!("{repository}:{} (kept as installed)", node.version),
                }),
            })
            .collect()
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
                self.check_allowed(&dep_repository, || format!("a dependency of {source}"))?;
                // As in Crossplane, an empty version is no constraint at all
                // but an error: the package author must say what they need.
                let spec = self.specs.parse(dependency.version.trim()).map_err(|e| {
                    DependencyError::InvalidVersion {
                        dependent: source.clone(),
                        dependency: dependency.package.clone(),
                        reason: Box::new(e),
                    }
                })?;
                Ok(Edge {
                    repository: Repository::from(dep_repository),
                    kind: dependency.kind,
                    upstream: Arc::from(dependency.package.as_str()),
                    requirement: Arc::new(Requirement {
                        spec,
                        source: source.clone(),
                    }),
                })
            })
            .collect()
    }

    /// `source` says who wants `repository`, worded only when it is not
    /// allowed: every package of every call is checked.
    fn check_allowed(&self, repository: &str, source: impl FnOnce() -> String) -> Result<()> {
        if self.settings.is_allowed(repository) {
            return Ok(());
        }
        Err(DependencyError::NotAllowed {
            repository: repository.to_string(),
            wanted_by: source(),
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

    /// `metadata.name` of a wanted package's object.
    fn name_of(&self, wanted: &Wanted) -> String {
        wanted
            .listed
            .and_then(|i| self.spec.packages[i].name.clone())
            .unwrap_or_else(|| dns_label(repository_path(wanted.upstream())))
    }

    /// The selected packages that depend, directly or not, on a blocked
    /// one: they wait, uncomposed. One of them installed would be lost,
    /// so then the gate's failure is the whole resolution's (the caller
    /// keeps the last resolved set).
    fn waiting(
        &self,
        selected: &Picks,
        edges: &HashMap<String, Vec<Edge>>,
        blocked: &BTreeMap<Repository, Error>,
    ) -> Result<BTreeSet<Repository>> {
        let mut waiting: BTreeSet<Repository> = BTreeSet::new();
        if blocked.is_empty() {
            return Ok(waiting);
        }
        let needs = |repository: &str| -> Vec<Repository> {
            selected
                .get(repository)
                .and_then(|s| edges.get(&s.digest))
                .map(|out| out.iter().map(|e| e.repository.clone()).collect())
                .unwrap_or_default()
        };
        loop {
            let more: Vec<Repository> = selected
                .keys()
                .filter(|r| !waiting.contains(*r))
                .filter(|r| {
                    needs(r)
                        .iter()
                        .any(|d| blocked.contains_key(d) || waiting.contains(d))
                })
                .cloned()
                .collect();
            if more.is_empty() {
                break;
            }
            waiting.extend(more);
        }
        let installed = self.installed;
        if waiting
            .iter()
            .any(|r| installed.is_some_and(|i| i.get(r).is_some()))
            && let Some(error) = blocked.values().next()
        {
            return Err(error.clone());
        }
        Ok(waiting)
    }

    /// Each blocked package, with the packages waiting for it.
    fn blocked(
        &self,
        wanted: &Wants,
        blocked: &BTreeMap<Repository, Error>,
        waiting: &BTreeSet<Repository>,
        selected: &Picks,
        edges: &HashMap<String, Vec<Edge>>,
    ) -> Vec<Blocked> {
        let reaches = |from: &str, target: &str| {
            let mut stack = vec![from.to_string()];
            let mut seen: BTreeSet<String> = BTreeSet::new();
            while let Some(r) = stack.pop() {
                if r == target {
                    return true;
                }
                if !seen.insert(r.clone()) {
                    continue;
                }
                let out = selected.get(r.as_str()).and_then(|s| edges.get(&s.digest));
                stack.extend(out.into_iter().flatten().map(|e| e.repository.to_string()));
            }
            false
        };
        blocked
            .iter()
            .filter_map(|(repository, reason)| {
                let dependents = waiting
                    .iter()
                    .filter(|w| reaches(w, repository))
                    .filter_map(|w| wanted.get(w).map(|w| self.name_of(w)))
                    .collect();
                Some(Blocked {
                    name: self.name_of(wanted.get(repository)?),
                    reason: reason.clone(),
                    dependents,
                })
            })
            .collect()
    }

    fn graph(
        &self,
        wanted: &Wants,
        selected: &Picks,
        edges: &HashMap<String, Vec<Edge>>,
        waiting: &BTreeSet<Repository>,
    ) -> Result<Graph> {
        let nodes = wanted.iter().filter_map(|(repository, w)| {
            if waiting.contains(repository) {
                return None;
            }
            let selection = selected.get(repository)?;
            let listed = w.listed.map(|i| &self.spec.packages[i]);
            Some(PackageNode {
                repository: repository.to_string(),
                kind: w.kind,
                upstream: w.upstream().to_string(),
                name: self.name_of(w),
                version: selection.version.clone(),
                digest: selection.digest.clone(),
                depends_on: edges
                    .get(&selection.digest)
                    .map(|out| out.iter().map(|e| e.repository.to_string()).collect())
                    .unwrap_or_default(),
                runtime_config_name: listed.and_then(|p| p.runtime_config_name.clone()),
            })
        });
        Graph::new(nodes)
    }
}

/// Adds what `edge` asks of its dependency to `wanted`.
fn want(wanted: &mut Wants, edge: &Edge) -> Result<()> {
    let entry = wanted.entry(edge.repository.clone()).or_insert_with(|| {
        Arc::new(Wanted {
            kind: edge.kind,
            mirrored: None,
            declared: BTreeSet::new(),
            listed: None,
            requirements: Vec::new(),
        })
    });
    if entry.kind != edge.kind {
        return Err(DependencyError::KindConflict {
            dependent: edge.requirement.source.clone(),
            repository: edge.repository.to_string(),
            declared: edge.kind,
            wanted: entry.kind,
        }
        .into());
    }
    // Copied only when shared: a listed package the first time a
    // dependency asks for it this round.
    let entry = Arc::make_mut(entry);
    // The path a dependency declares is the one Crossplane's Lock will look
    // for, so it wins over our reverse mirror mapping.
    entry.declared.insert(edge.upstream.clone());
    entry.requirements.push(edge.requirement.clone());
    Ok(())
}
