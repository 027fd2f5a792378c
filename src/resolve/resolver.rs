//! The resolver: rounds to a fixed point over the registry (see the
//! module documentation of `resolve`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::stream::{self, StreamExt, TryStreamExt};

use super::graph::{Graph, PackageNode};
use super::installed::Installed;
use super::quarantine::{Quarantine, Release};
use super::resolution::{Blocked, Kept, Resolution};
use super::scan::{Skipped, Verdict, judge};
use crate::error::{DependencyError, Error, Result};
use crate::names::{dns_label, repository_path};
use crate::package::{PackageKind, PackageMeta};
use crate::registry::Registry;
use crate::spec::limits::{MAX_SKIPPED, MAX_STATUS_PACKAGES};
use crate::spec::{Settings, XrSpec};
use crate::version::{Constraint, Dialect, Readings, VersionSpec, parse_tag, select_highest};
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
    /// The highest release of the repository, when it is higher than
    /// `version`: what the constraints keep the package from.
    available: Option<String>,
    /// How the dialects read its constraints differently, if they do.
    dialects: Option<String>,
    /// Higher versions the constraints admit that the supply-chain gate
    /// passed over, highest first.
    skipped: Vec<Skipped>,
}

/// What one round made of a wanted package.
#[derive(Clone, Debug)]
enum Pick {
    /// A version, and why it is the installed one kept, when it is.
    Selected(Selection, Option<Error>),
    /// No version passes the supply-chain gate, and none is installed.
    Blocked(Error),
}

/// The tag a constraint chose, the highest release above it, and how the
/// dialects read the constraints differently, if they do.
struct Choice {
    tag: String,
    available: Option<String>,
    dialects: Option<String>,
    skipped: Vec<Skipped>,
}

/// When `chosen` was chosen under every dialect and they would each have
/// chosen otherwise from `tags`: what each reads, for one Warning.
fn disagreement(
    repository: &str,
    texts: &[&str],
    readings: &Readings,
    tags: &[String],
    chosen: &str,
) -> Option<String> {
    if texts.is_empty() {
        return None;
    }
    let picks: Vec<(Dialect, String)> = readings
        .highest_per_dialect(tags.iter().map(String::as_str))
        .into_iter()
        .map(|(d, pick)| {
            let pick = match pick {
                Some(Some(tag)) => format!("takes {tag}"),
                Some(None) => "takes no tag".to_string(),
                None => "cannot read it".to_string(),
            };
            (d, pick)
        })
        .collect();
    if picks.iter().all(|(_, pick)| *pick == picks[0].1) {
        return None;
    }
    let readings: Vec<String> = picks
        .iter()
        .map(|(d, pick)| format!("{d} {pick}"))
        .collect();
    let shown: String = texts.join(", ").chars().take(256).collect();
    Some(format!(
        "{repository}: the constraints {shown:?} read differently across Crossplane v2: {}; \
         took {chosen}, which every one accepts (set the input's crossplaneVersion to read them as one Crossplane does)",
        readings.join("; ")
    ))
}

/// The highest release (a tag without a prerelease) among `tags` when it
/// is higher than `chosen`.
fn available(tags: &[String], chosen: &str) -> Option<String> {
    let releases = tags
        .iter()
        .map(String::as_str)
        .filter(|t| parse_tag(t).is_some_and(|v| v.pre.is_empty()));
    let highest = select_highest(&[], releases)?;
    let higher = highest != chosen && select_highest(&[], [highest, chosen]) == Some(highest);
    higher.then(|| highest.to_string())
}

/// A dependency edge read from a package's metadata.
#[derive(Clone, Debug)]
struct Edge {
    repository: String,
    kind: PackageKind,
    upstream: String,
    requirement: Requirement,
}

pub struct Resolver<'a> {
    settings: &'a Settings,
    spec: &'a XrSpec,
    registry: &'a dyn Registry,
    installed: Option<&'a dyn Installed>,
    quarantine: Option<&'a Quarantine>,
    /// Constraint texts read under every dialect, by the texts: most
    /// repositories of a large XR are asked for with the same few
    /// constraints.
    readings: Mutex<HashMap<String, Arc<Readings>>>,
}

impl<'a> Resolver<'a> {
    pub fn new(settings: &'a Settings, spec: &'a XrSpec, registry: &'a dyn Registry) -> Self {
        Self {
            settings,
            spec,
            registry,
            installed: None,
            quarantine: None,
            readings: Mutex::default(),
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
        let mut selected: BTreeMap<String, Selection> = BTreeMap::new();
        // Metadata by digest; a digest's dependencies never change.
        let mut edges: HashMap<String, Vec<Edge>> = HashMap::new();
        // Each repository's selection, and what it was selected for: a
        // repository wanted exactly as in the round before is not asked
        // about again (most are, in every round after the first).
        let mut chosen: HashMap<String, (Wanted, Pick)> = HashMap::new();
        for _ in 0..MAX_ROUNDS {
            let wanted = self.wanted(&selected, &edges)?;
            // Owned items: futures borrowing from the iterator would not be
            // Send across the gRPC handler's await points.
            let changed: Vec<(String, Wanted)> = wanted
                .iter()
                .filter(|(r, w)| chosen.get(*r).is_none_or(|(before, ..)| before != *w))
                .map(|(r, w)| (r.clone(), w.clone()))
                .collect();
            let fresh: Vec<(String, Wanted, Pick)> = stream::iter(changed)
                .map(|(repository, w)| async move {
                    let pick = self.pick(&repository, &w).await?;
                    Ok::<_, Error>((repository, w, pick))
                })
                .buffer_unordered(CONCURRENCY)
                .try_collect()
                .await?;
            for (repository, w, pick) in fresh {
                chosen.insert(repository, (w, pick));
            }
            let mut blocked: BTreeMap<String, Error> = BTreeMap::new();
            let outcomes = wanted
                .keys()
                .filter_map(|repository| match chosen.get(repository)? {
                    (_, Pick::Selected(selection, failure)) => {
                        Some((repository.clone(), selection.clone(), failure.clone()))
                    }
                    (_, Pick::Blocked(error)) => {
                        blocked.insert(repository.clone(), error.clone());
                        None
                    }
                });
            let outcomes: Vec<(String, Selection, Option<Error>)> = outcomes.collect();
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
                let waiting = self.waiting(&selected, &edges, &blocked)?;
                let graph = self.graph(&wanted, &selected, &edges, &waiting)?;
                let blocked = self.blocked(&wanted, &blocked, &waiting, &selected, &edges);
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
                let available = selected
                    .iter()
                    .filter_map(|(repository, s)| {
                        Some((graph.get(repository)?.name.clone(), s.available.clone()?))
                    })
                    .collect();
                let warnings = selected
                    .values()
                    .filter_map(|s| s.dialects.clone())
                    .collect();
                let skipped = selected
                    .iter()
                    .filter(|(_, s)| !s.skipped.is_empty())
                    .filter_map(|(repository, s)| {
                        Some((graph.get(repository)?.name.clone(), s.skipped.clone()))
                    })
                    .collect();
                return Ok(Resolution {
                    graph,
                    kept,
                    available,
                    warnings,
                    skipped,
                    blocked,
                });
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

        // What a constraint chose also says which higher release it keeps
        // the package from; an exact tag or digest was asked for as it is.
        let mut available = None;
        let mut dialects = None;
        let mut skipped = Vec::new();
        let mut gated = false;
        let mut chose = |choice: Choice| {
            available = choice.available;
            dialects = choice.dialects;
            skipped = choice.skipped;
            gated = true;
            choice.tag
        };
        let version = match requested {
            Some(Requested::Spec(VersionSpec::Digest(digest))) => digest,
            Some(Requested::Tag(tag)) => {
                // Every dialect the platform may run reads every constraint
                // as admitting the tag.
                let satisfies = self.settings.dialects.iter().all(|d| {
                    constraints
                        .iter()
                        .all(|c| d.matches(c.as_str(), &tag).unwrap_or(false))
                });
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
                    .map(&mut chose)
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
                    .map(&mut chose)
                    .ok_or_else(|| self.unsatisfiable(repository, wanted, None))?,
            },
        };
        let digest = self.registry.resolve_digest(repository, &version).await?;
        // A tag or digest asked for as it is has no other version to take.
        if !gated && let Some(reason) = self.gate(repository, &digest).await? {
            return Err(supply_chain(repository, &[Skipped::new(&version, &reason)]));
        }
        Ok(Selection {
            version,
            digest,
            available,
            dialects,
            skipped,
        })
    }

    /// What becomes of one wanted package this round: its selection, the
    /// installed one kept, or (failing the supply-chain gate with nothing
    /// installed) blocked.
    async fn pick(&self, repository: &str, wanted: &Wanted) -> Result<Pick> {
        match self.select(repository, wanted).await {
            Ok(selection) => Ok(Pick::Selected(selection, None)),
            Err(error) => match self.kept(repository, wanted, &error) {
                Some(selection) => Ok(Pick::Selected(selection, Some(error))),
                None if matches!(error, Error::SupplyChain { .. }) => Ok(Pick::Blocked(error)),
                None => Err(required_by(wanted, error)),
            },
        }
    }

    /// Why the image `reference` names fails the input's `scan`, when its
    /// repository is gated and it does; one scan report per digest (the
    /// registry's cache keeps it for the tag TTL).
    async fn gate(&self, repository: &str, reference: &str) -> Result<Option<String>> {
        let Some(scan) = self.settings.scan.as_ref().filter(|s| s.covers(repository)) else {
            return Ok(None);
        };
        let digest = self.registry.resolve_digest(repository, reference).await?;
        let report = self.registry.scan_report(repository, &digest).await?;
        Ok(match judge(scan, &report) {
            Verdict::Pass => None,
            Verdict::Fail(reason) => Some(reason),
        })
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
        // What fails the supply-chain gate stays as installed, listed or
        // not: nothing installed is lost to a new finding.
        let gated = matches!(error, Error::SupplyChain { .. });
        if !gated && (wanted.listed.is_some() || !gone) {
            return None;
        }
        let node = self.installed?.get(repository)?;
        (node.kind == wanted.kind).then(|| Selection {
            version: node.version.clone(),
            digest: node.digest.clone(),
            available: None,
            dialects: None,
            skipped: Vec::new(),
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
    ) -> Result<Option<Choice>> {
        let tags = self.registry.list_tags(repository).await?;
        if tags.is_empty() {
            return Err(Error::EmptyRepository {
                registry: self.settings.registry.to_string(),
                repository: repository.to_string(),
            });
        }
        // A quarantined release is skipped while its tag still names the
        // digest that was rolled back; each pass skips one more tag, so
        // this ends within the number of quarantined releases.
        let texts: Vec<&str> = constraints.iter().map(|c| c.as_str()).collect();
        // Read once for every pass and for the dialects' disagreement.
        let readings = self.readings(&texts);
        let dialects = &self.settings.dialects;
        // A version failing the supply-chain gate is passed over the same
        // way, at most MAX_SKIPPED of them: each costs a scan report.
        let mut skipped: BTreeSet<&str> = BTreeSet::new();
        let mut gated: Vec<Skipped> = Vec::new();
        loop {
            let candidates = tags
                .iter()
                .map(String::as_str)
                .filter(|t| !skipped.contains(t));
            let Some(tag) = readings.select_highest_in(dialects, candidates)? else {
                if gated.is_empty() {
                    return Ok(None);
                }
                return Err(supply_chain(repository, &gated));
            };
            skipped.insert(tag);
            if self.quarantined(repository, tag).await? {
                continue;
            }
            if let Some(reason) = self.gate(repository, tag).await? {
                gated.push(Skipped::new(tag, &reason));
                if gated.len() >= MAX_SKIPPED {
                    return Err(supply_chain(repository, &gated));
                }
                continue;
            }
            return Ok(Some(Choice {
                tag: tag.to_string(),
                available: available(&tags, tag),
                dialects: (dialects.len() > 1)
                    .then(|| disagreement(repository, &texts, &readings, &tags, tag))
                    .flatten(),
                skipped: gated,
            }));
        }
    }

    /// `texts` read under every dialect, once per resolution. A text
    /// repeated (a family provider's many dependents asking for it alike)
    /// is read once: every constraint must hold, so a repeat adds nothing,
    /// and the first to fail is still the first.
    fn readings(&self, texts: &[&str]) -> Arc<Readings> {
        let mut seen: HashSet<&str> = HashSet::new();
        let texts: Vec<&str> = texts.iter().copied().filter(|t| seen.insert(t)).collect();
        // Each text after its length: no two lists share a key.
        let mut key = String::new();
        for text in &texts {
            key.push_str(&text.len().to_string());
            key.push(':');
            key.push_str(text);
        }
        // A poisoned lock only means another lookup panicked; the map is
        // still whole.
        let mut known = self.readings.lock().unwrap_or_else(|e| e.into_inner());
        known
            .entry(key)
            .or_insert_with(|| Arc::new(Readings::of(&texts)))
            .clone()
    }

    /// Whether `tag` of `repository` is held back: quarantined while it
    /// still names the digest that was rolled back.
    async fn quarantined(&self, repository: &str, tag: &str) -> Result<bool> {
        let held: Vec<&Release> = match self.quarantine {
            Some(quarantine) => quarantine.at(repository, tag).collect(),
            None => Vec::new(),
        };
        if held.is_empty() {
            return Ok(false);
        }
        let digest = self.registry.resolve_digest(repository, tag).await?;
        Ok(held.iter().any(|r| r.digest == digest))
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
        selected: &BTreeMap<String, Selection>,
        edges: &HashMap<String, Vec<Edge>>,
        blocked: &BTreeMap<String, Error>,
    ) -> Result<BTreeSet<String>> {
        let mut waiting: BTreeSet<String> = BTreeSet::new();
        if blocked.is_empty() {
            return Ok(waiting);
        }
        let needs = |repository: &str| -> Vec<String> {
            selected
                .get(repository)
                .and_then(|s| edges.get(&s.digest))
                .map(|out| out.iter().map(|e| e.repository.clone()).collect())
                .unwrap_or_default()
        };
        loop {
            let more: Vec<String> = selected
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
        wanted: &BTreeMap<String, Wanted>,
        blocked: &BTreeMap<String, Error>,
        waiting: &BTreeSet<String>,
        selected: &BTreeMap<String, Selection>,
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
                let out = selected.get(&r).and_then(|s| edges.get(&s.digest));
                stack.extend(out.into_iter().flatten().map(|e| e.repository.clone()));
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
        wanted: &BTreeMap<String, Wanted>,
        selected: &BTreeMap<String, Selection>,
        edges: &HashMap<String, Vec<Edge>>,
        waiting: &BTreeSet<String>,
    ) -> Result<Graph> {
        let nodes = wanted.iter().filter_map(|(repository, w)| {
            if waiting.contains(repository) {
                return None;
            }
            let selection = selected.get(repository)?;
            let listed = w.listed.map(|i| &self.spec.packages[i]);
            Some(PackageNode {
                repository: repository.clone(),
                kind: w.kind,
                upstream: w.upstream().to_string(),
                name: self.name_of(w),
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

/// The failure of a package whose versions all fail the supply-chain gate.
fn supply_chain(repository: &str, skipped: &[Skipped]) -> Error {
    let skipped: Vec<String> = skipped.iter().map(Skipped::to_string).collect();
    Error::SupplyChain {
        repository: repository.to_string(),
        skipped: skipped.join("; "),
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
