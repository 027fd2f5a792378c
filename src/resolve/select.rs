//! Choosing one wanted package's version: the tag its constraints admit
//! (under every Crossplane dialect the platform runs), held back by
//! quarantined releases and the supply-chain gate, or the installed one
//! kept when the package no longer resolves.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

// Hashed for every package of every call: foldhash, not SipHash.
use foldhash::{HashMap, HashSet};

use super::installed::Installed;
use super::quarantine::{Quarantine, Release};
use super::scan::{Skipped, Verdict, judge};
use super::signature;
use super::wanted::Wanted;
use crate::error::{DependencyError, Error, Result};
use crate::reference::Digest;
use crate::registry::{Registry, Tags};
use crate::spec::limits::MAX_SKIPPED;
use crate::spec::{Settings, XrSpec};
use crate::version::{Constraint, Dialect, Readings, VersionSpec, Versions};

/// What the XR's `version` field asks for. Unlike `dependsOn`, a top-level
/// version may name any existing tag (a package object's `spec.package`
/// takes a tag as is), so a tag that exists is used verbatim before the
/// string is read as a constraint.
#[derive(Clone, Debug)]
enum Requested {
    Tag(String),
    Spec(VersionSpec),
}

/// The version chosen for a repository and the image it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Selection {
    pub(super) version: String,
    pub(super) digest: String,
    /// The highest release of the repository, when it is higher than
    /// `version`: what the constraints keep the package from.
    pub(super) available: Option<String>,
    /// How the dialects read its constraints differently, if they do.
    pub(super) dialects: Option<String>,
    /// Higher versions the constraints admit that the supply-chain gate
    /// passed over, highest first.
    pub(super) skipped: Vec<Skipped>,
}

/// What one round made of a wanted package.
#[derive(Clone, Debug)]
pub(super) enum Pick {
    /// A version, and why it is the installed one kept, when it is. Shared:
    /// every later round that wants the package alike picks it again.
    Selected(Arc<Selection>, Option<Error>),
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

/// Constraint texts read under every dialect, once per resolution, by the
/// texts: most repositories of a large XR are asked for with the same few
/// constraints.
#[derive(Debug, Default)]
pub(super) struct ReadingsCache {
    known: Mutex<HashMap<Vec<u8>, Arc<Readings>>>,
}

impl ReadingsCache {
    /// `texts` read under every dialect. A text repeated (a family
    /// provider's many dependents asking for it alike) is read once: every
    /// constraint must hold, so a repeat adds nothing, and the first to
    /// fail is still the first.
    fn of(&self, texts: &[&str]) -> Arc<Readings> {
        let texts: Vec<&str> = if texts.len() < 2 {
            texts.to_vec()
        } else {
            let mut seen: HashSet<&str> = HashSet::default();
            texts.iter().copied().filter(|t| seen.insert(t)).collect()
        };
        // Each text after its length: no two lists share a key. Bytes, not
        // formatted digits: this runs for every package of every call.
        let mut key: Vec<u8> = Vec::with_capacity(texts.iter().map(|t| t.len() + 8).sum());
        for text in &texts {
            key.extend_from_slice(&(text.len() as u64).to_le_bytes());
            key.extend_from_slice(text.as_bytes());
        }
        // A poisoned lock only means another lookup panicked; the map is
        // still whole.
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known
            .entry(key)
            .or_insert_with(|| Arc::new(Readings::of(&texts)))
            .clone()
    }
}

/// One repository's tags, listed at most once while one package's version
/// is chosen: a listed package reads them both for an exact tag and for its
/// constraint, and the chosen tag's digest is the listing's when it gave one.
struct Listing<'a> {
    registry: &'a dyn Registry,
    repository: &'a str,
    tags: Option<Tags>,
}

impl<'a> Listing<'a> {
    fn of(registry: &'a dyn Registry, repository: &'a str) -> Self {
        Self {
            registry,
            repository,
            tags: None,
        }
    }

    async fn tags(&mut self) -> Result<Tags> {
        if let Some(tags) = &self.tags {
            return Ok(tags.clone());
        }
        let tags = self.registry.list_tags(self.repository).await?;
        self.tags = Some(tags.clone());
        Ok(tags)
    }

    /// The tags, when they were listed.
    fn listed(&self) -> Option<&Tags> {
        self.tags.as_ref()
    }
}

/// What choosing a version reads: the policy, the XR, the registry and
/// the caller's hints. Copied into each concurrent lookup.
#[derive(Clone, Copy)]
pub(super) struct Selector<'a> {
    pub(super) settings: &'a Settings,
    pub(super) spec: &'a XrSpec,
    pub(super) registry: &'a dyn Registry,
    pub(super) installed: Option<&'a dyn Installed>,
    pub(super) quarantine: Option<&'a Quarantine>,
    pub(super) readings: &'a ReadingsCache,
}

impl Selector<'_> {
    /// What becomes of one wanted package this round: its selection, the
    /// installed one kept, or (failing the supply-chain gate with nothing
    /// installed) blocked.
    pub(super) async fn pick(&self, repository: &str, wanted: &Wanted) -> Result<Pick> {
        match self.select(repository, wanted).await {
            Ok(selection) => Ok(Pick::Selected(Arc::new(selection), None)),
            Err(error) => match self.kept(repository, wanted, &error) {
                Some(selection) => Ok(Pick::Selected(Arc::new(selection), Some(error))),
                None if matches!(error, Error::SupplyChain { .. }) => Ok(Pick::Blocked(error)),
                None => Err(required_by(wanted, error)),
            },
        }
    }

    /// Chooses the version of one wanted package.
    async fn select(&self, repository: &str, wanted: &Wanted) -> Result<Selection> {
        let mut listing = Listing::of(self.registry, repository);
        let requested = match wanted.listed {
            Some(i) => Some(self.requested(repository, i, &mut listing).await?),
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
                self.highest(repository, &all, &mut listing)
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
                    .highest(repository, &constraints, &mut listing)
                    .await?
                    .map(&mut chose)
                    .ok_or_else(|| self.unsatisfiable(repository, wanted, None))?,
            },
        };
        let digest = self
            .digest_of(repository, &version, listing.listed())
            .await?;
        // A tag or digest asked for as it is has no other version to take.
        if !gated && let Some(reason) = self.gate(repository, &digest, None).await? {
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

    /// The digest `reference` names: the one `listed` (the listing it was
    /// chosen from) gave, when it gave one, else the registry's answer. A
    /// listed digest spares a tag -> digest lookup per package (in ECR, a
    /// `BatchGetImage` by tag; warm, a cache lookup); the package is still
    /// read by it, its manifest checked against it. A digest pin is never
    /// a tag, so it is always asked for: that is what says it exists.
    async fn digest_of(
        &self,
        repository: &str,
        reference: &str,
        listed: Option<&Tags>,
    ) -> Result<String> {
        let from_listing = listed
            .filter(|_| !Digest::is_digest(reference))
            .and_then(|tags| tags.digest_of(reference));
        match from_listing {
            Some(digest) => Ok(digest.to_string()),
            None => self.registry.resolve_digest(repository, reference).await,
        }
    }

    /// Why the image `reference` names fails the input's `scan` or its
    /// `verify`, when its repository is gated and it does; one scan report
    /// and one signature lookup per digest (the registry's cache keeps
    /// them for the tag TTL). `listed` is the listing a tag was chosen
    /// from, whose digest for it is taken when it gave one.
    async fn gate(
        &self,
        repository: &str,
        reference: &str,
        listed: Option<&Tags>,
    ) -> Result<Option<String>> {
        let scan = self.settings.scan.as_ref().filter(|s| s.covers(repository));
        let verify = self
            .settings
            .verify
            .as_ref()
            .filter(|v| v.covers(repository));
        if scan.is_none() && verify.is_none() {
            return Ok(None);
        }
        let digest = self.digest_of(repository, reference, listed).await?;
        if let Some(scan) = scan {
            let report = self.registry.scan_report(repository, &digest).await?;
            if let Verdict::Fail(reason) = judge(scan, &report) {
                return Ok(Some(reason));
            }
        }
        if let Some(verify) = verify {
            let found = self.registry.signatures(repository, &digest).await?;
            let verdict = signature::VERDICTS
                .judge(verify, repository, &digest, &found)
                .await;
            if let Verdict::Fail(reason) = verdict {
                return Ok(Some(reason));
            }
        }
        Ok(None)
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

    async fn requested(
        &self,
        repository: &str,
        index: usize,
        listing: &mut Listing<'_>,
    ) -> Result<Requested> {
        let text = self.spec.packages[index].version.trim();
        let parsed = VersionSpec::parse(text);
        if let Ok(VersionSpec::Digest(_)) = parsed {
            return parsed.map(Requested::Spec);
        }
        let tags = listing.tags().await?;
        if tags.contains(text) {
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
        listing: &mut Listing<'_>,
    ) -> Result<Option<Choice>> {
        let tags = listing.tags().await?;
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
        let readings = self.readings.of(&texts);
        let dialects = &self.settings.dialects;
        // A version failing the supply-chain gate is passed over the same
        // way, at most MAX_SKIPPED of them: each costs a scan report.
        let mut skipped: BTreeSet<&str> = BTreeSet::new();
        let mut gated: Vec<Skipped> = Vec::new();
        // Each tag read once for every pass, the disagreement and the
        // highest release.
        let versions = Versions::of(tags.iter().map(String::as_str));
        loop {
            let found =
                readings.select_highest_among(dialects, &versions, |t| skipped.contains(t))?;
            let Some(tag) = found else {
                if gated.is_empty() {
                    return Ok(None);
                }
                return Err(supply_chain(repository, &gated));
            };
            skipped.insert(tag);
            if self.quarantined(repository, tag, &tags).await? {
                continue;
            }
            if let Some(reason) = self.gate(repository, tag, Some(&tags)).await? {
                gated.push(Skipped::new(tag, &reason));
                if gated.len() >= MAX_SKIPPED {
                    return Err(supply_chain(repository, &gated));
                }
                continue;
            }
            return Ok(Some(Choice {
                tag: tag.to_string(),
                available: versions.release_above(tag).map(str::to_string),
                dialects: (dialects.len() > 1)
                    .then(|| disagreement(repository, &texts, &readings, &versions, tag))
                    .flatten(),
                skipped: gated,
            }));
        }
    }

    /// Whether `tag` of `repository` (listed in `tags`) is held back:
    /// quarantined while it still names the digest that was rolled back.
    async fn quarantined(&self, repository: &str, tag: &str, tags: &Tags) -> Result<bool> {
        let held: Vec<&Release> = match self.quarantine {
            Some(quarantine) => quarantine.at(repository, tag).collect(),
            None => Vec::new(),
        };
        if held.is_empty() {
            return Ok(false);
        }
        let digest = self.digest_of(repository, tag, Some(tags)).await?;
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
}

/// When `chosen` was chosen under every dialect and they would each have
/// chosen otherwise from `tags`: what each reads, for one Warning.
fn disagreement(
    repository: &str,
    texts: &[&str],
    readings: &Readings,
    versions: &Versions<'_>,
    chosen: &str,
) -> Option<String> {
    if texts.is_empty() {
        return None;
    }
    let raw = readings.highest_per_dialect_among(versions);
    // Mostly they agree: said without a message.
    if raw.iter().all(|(_, pick)| *pick == raw[0].1) {
        return None;
    }
    let picks: Vec<(Dialect, String)> = raw
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
