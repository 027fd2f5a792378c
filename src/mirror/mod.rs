//! `mirror`: copy packages and their whole dependency closure from their
//! upstream registries into ECR, digests intact.
//!
//! The story of a run:
//! 1. Read what to mirror: package references, or an XR's packages; the
//!    mirror table maps each upstream path to an ECR repository.
//! 2. Resolve the closure with the function's own resolver, reading tags
//!    and `package.yaml` from upstream ([`upstream::Upstream`]).
//! 3. Read each resolved image's manifest tree (and, asked to, its
//!    signatures), and ask ECR what it already holds.
//! 4. `--dry-run` prints that plan and stops. Otherwise: create missing
//!    repositories, copy content ([`copy`]), then tag in install order, a
//!    package only when it and everything it depends on is complete.
//! 5. Print a per-package summary (JSON on stdout); `--emit-xr` writes the
//!    XR that installs what was mirrored, pinned to its digests.

pub mod copy;
pub mod progress;
pub mod request;
pub mod target;
pub mod upstream;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use futures::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::{Value as Json, json};

use crate::aws::RegistryRef;
use crate::oci::distribution;
use crate::registry::Registry;
use crate::registry::cache::{CacheOptions, CachedRegistry};
use crate::resolve::Resolver;
use crate::resolve::graph::PackageNode;
use crate::spec::input::Mirror;
use crate::spec::load;
use crate::spec::policy::Origin;
use crate::spec::{Input, Settings, XrSpec};
use crate::version::{Constraint, select_highest};
use copy::{Copied, Copier, Image, Role};
use progress::Progress;
use request::{PackageRef, Requested};
use target::{RepositoryOptions, Target};
use upstream::{Source, Upstream};

/// The upstream registries behind the function's caches, so each tag list,
/// digest and `package.yaml` is read once per run whoever asks: the
/// command line's packages, the resolver's rounds, the signature lookup.
type Reader = CachedRegistry<Upstream>;

/// The XR `--emit-xr` writes when none was read.
const XR_API_VERSION: &str = "ecr.platform.example.org/v1alpha1";
const XR_KIND: &str = "XEcrPackages";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("resolving the packages: {0}")]
    Resolve(#[source] crate::Error),
    /// The XR or input file could not be read.
    #[error(transparent)]
    Input(crate::Error),
    #[error("ECR {operation}: {message}")]
    Ecr {
        operation: &'static str,
        message: String,
    },
    #[error("writing to ECR: {0}")]
    Target(#[source] Box<distribution::Error>),
    #[error("copying blob {digest} of {image}: {source}")]
    Blob {
        image: String,
        digest: String,
        #[source]
        source: Box<distribution::Error>,
    },
    #[error("{image}: {message}")]
    Image { image: String, message: String },
    #[error("{package} has no {wanted} (it has {tags} tags)")]
    NoVersion {
        package: String,
        wanted: String,
        tags: usize,
    },
    #[error("{failed} of {total} packages were not mirrored (see the summary)")]
    Incomplete { failed: usize, total: usize },
}

impl Error {
    /// The process exit code: 2 for a command line that cannot work, 1 for
    /// anything that failed while working.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            _ => 1,
        }
    }
}

impl From<crate::Error> for Error {
    fn from(e: crate::Error) -> Self {
        Error::Resolve(e)
    }
}

#[derive(Debug, Clone, Args)]
pub struct MirrorArgs {
    /// Packages to mirror: `host/path[:TAG | @CONSTRAINT | @sha256:DIGEST]`;
    /// without a version, the highest release tag.
    #[arg(value_name = "PACKAGE", conflicts_with = "from_xr")]
    pub packages: Vec<String>,

    /// The AWS account of the target registry (default: the XR's).
    #[arg(long)]
    pub account_id: Option<String>,

    /// The region of the target registry (default: the XR's).
    #[arg(long)]
    pub region: Option<String>,

    /// Put every repository under this prefix (with the default mirror table).
    #[arg(long, conflicts_with_all = ["mirror", "input"])]
    pub repository_prefix: Option<String>,

    /// The registry host to push to instead of the account's ECR host (a
    /// pull-through proxy, `.amazonaws.com.cn`, dual-stack).
    #[arg(long)]
    pub registry_host: Option<String>,

    /// Mirror what this XEcrPackages XR (or claim) would install.
    #[arg(long)]
    pub from_xr: Option<PathBuf>,

    /// The function input (an Input, or a Composition calling the function)
    /// whose mirror table and dependency settings apply.
    #[arg(long)]
    pub input: Option<PathBuf>,

    /// `UPSTREAM=PREFIX`: packages under UPSTREAM go to ECR repositories
    /// under PREFIX, as the input's `mirrors`. Repeatable.
    #[arg(long = "mirror", value_name = "UPSTREAM=PREFIX", value_parser = request::parse_mirror)]
    pub mirror: Vec<Mirror>,

    /// `HOST=URL`: read the upstream registry HOST from URL instead (a
    /// pull-through proxy in front of it); package paths keep HOST.
    /// Repeatable.
    #[arg(long = "upstream-endpoint", value_name = "HOST=URL", value_parser = request::parse_endpoint)]
    pub upstream_endpoints: Vec<(String, String)>,

    /// Images copied at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,

    /// Print the plan (packages, versions, repositories to create, bytes to
    /// copy) and write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Write the XR that installs what was mirrored, pinned to digests.
    #[arg(long)]
    pub emit_xr: Option<PathBuf>,

    /// Copy cosign signatures and attestations (`sha256-<digest>.sig`,
    /// `.att`) and OCI referrers of each image too.
    #[arg(long)]
    pub signatures: bool,

    /// Create repositories with immutable tags.
    #[arg(long)]
    pub immutable_tags: bool,

    /// Create repositories that scan images on push.
    #[arg(long)]
    pub scan_on_push: bool,

    /// Create repositories encrypted with this KMS key.
    #[arg(long)]
    pub kms_key: Option<String>,

    /// Blobs larger than this are uploaded in chunks of this size, in bytes
    /// (ECR takes chunks of 5 MiB or more).
    #[arg(long, default_value_t = 16 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1024..=1024 * 1024 * 1024))]
    pub chunk_size: u64,

    /// Bound on each registry request, in seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

/// One resolved package and the images that carry it.
struct Package {
    node: PackageNode,
    source: Source,
    images: Vec<Image>,
}

/// What the dry run prints for one package.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Planned {
    source: String,
    repository: String,
    kind: String,
    version: String,
    digest: String,
    depends_on: Vec<String>,
    signatures: Vec<String>,
    repository_exists: bool,
    blobs_to_copy: usize,
    bytes_to_copy: u64,
}

/// What a run did for one package.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Outcome {
    source: String,
    repository: String,
    kind: String,
    version: String,
    digest: String,
    /// `copied`, `present` (nothing to do), `failed`, or `untagged` (its
    /// content is there but something it depends on failed).
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    bytes_uploaded: u64,
    blobs_uploaded: usize,
    blobs_mounted: usize,
    manifests_pushed: usize,
    tags_pushed: usize,
}

pub async fn run(args: &MirrorArgs) -> Result<(), Error> {
    let timeout = Duration::from_secs(args.timeout.max(1));
    let (xr, input) = read_files(args)?;
    let mirrors = request::mirrors(
        &args.mirror,
        input.as_ref(),
        args.repository_prefix.as_deref(),
    );
    let endpoints = args.upstream_endpoints.iter().cloned().collect();
    let upstream = Reader::new(
        Arc::new(Upstream::new(mirrors.clone(), endpoints, timeout)),
        // One run: answers stay trusted for its whole length.
        CacheOptions {
            tag_ttl: Duration::from_secs(24 * 3600),
            ..CacheOptions::forgetting_failures()
        },
    );

    let spec = match &xr {
        Some(xr) => XrSpec::from_composite(xr)?,
        None => listed_spec(args, &upstream).await?,
    };
    let registry = RegistryRef::new(
        args.account_id
            .as_deref()
            .unwrap_or(&spec.registry.account_id),
        args.region.as_deref().unwrap_or(&spec.registry.region),
    );
    let input = Input {
        mirrors,
        ..input.unwrap_or_default()
    };
    // Mirroring is the platform team's own act: no allowlist bounds it
    // beyond the repositories its input allows.
    let settings = Settings::with_origin(
        crate::spec::xr::XrRef::named("mirror"),
        &spec,
        &input,
        Origin::Platform,
    )?;
    eprintln!(
        "resolving {} packages and their dependencies upstream",
        spec.packages.len()
    );
    let graph = Resolver::new(&settings, &spec, &upstream)
        .resolve()
        .await?
        .graph;

    let packages = read_images(&upstream, graph.install_order(), args).await?;
    let target = Target::connect(registry.clone(), args.registry_host.as_deref(), timeout).await?;
    let repositories: BTreeSet<&str> = packages
        .iter()
        .map(|p| p.node.repository.as_str())
        .collect();
    let mut existing = BTreeSet::new();
    for repository in &repositories {
        if target.has_repository(repository).await? {
            existing.insert(repository.to_string());
        }
    }
    let plan = plan(&target, &packages, &existing).await?;
    if args.dry_run {
        return print_plan(&plan, &registry);
    }

    let progress = Progress::new(plan.bytes);
    let copier = Copier::new(
        upstream.inner(),
        &target,
        args.chunk_size as usize,
        &progress,
        repositories.iter().map(|r| r.to_string()).collect(),
    );

    let options = RepositoryOptions {
        immutable_tags: args.immutable_tags,
        scan_on_push: args.scan_on_push,
        kms_key: args.kms_key.clone(),
    };
    let mut created = Vec::new();
    for repository in &plan.repositories_to_create {
        target.create_repository(repository, &options).await?;
        eprintln!("created repository {repository}");
        created.push(repository.clone());
    }

    let contents: Vec<Result<Copied, Error>> = stream::iter(&packages)
        .map(|package| async {
            let mut total = Copied {
                present: true,
                ..Copied::default()
            };
            for image in &package.images {
                let copied = copier.content(image).await?;
                total.bytes_uploaded += copied.bytes_uploaded;
                total.blobs_uploaded += copied.blobs_uploaded;
                total.blobs_mounted += copied.blobs_mounted;
                total.manifests_pushed += copied.manifests_pushed;
                total.present &= copied.present;
            }
            Ok(total)
        })
        .buffered(usize::from(args.concurrency))
        .collect()
        .await;

    // Tags in install order: a package is tagged only once it and all it
    // depends on are complete.
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut complete: HashMap<&str, bool> = HashMap::new();
    for (package, content) in packages.iter().zip(contents) {
        let node = &package.node;
        let mut outcome = Outcome {
            source: package.source.to_string(),
            repository: node.repository.clone(),
            kind: node.kind.to_string(),
            version: node.version.clone(),
            digest: node.digest.clone(),
            ..Outcome::default()
        };
        let broken: Vec<&str> = node
            .depends_on
            .iter()
            .filter(|d| !complete.get(d.as_str()).copied().unwrap_or(false))
            .map(String::as_str)
            .collect();
        let result = match content {
            Err(e) => Err((e.to_string(), "failed")),
            Ok(copied) => {
                outcome.bytes_uploaded = copied.bytes_uploaded;
                outcome.blobs_uploaded = copied.blobs_uploaded;
                outcome.blobs_mounted = copied.blobs_mounted;
                outcome.manifests_pushed = copied.manifests_pushed;
                if broken.is_empty() {
                    tag_all(&copier, package)
                        .await
                        .map(|tags| (tags, copied.present))
                        .map_err(|e| (e.to_string(), "failed"))
                } else {
                    Err((
                        format!("not tagged: {} did not mirror", broken.join(", ")),
                        "untagged",
                    ))
                }
            }
        };
        let ok = match result {
            Ok((tags, present)) => {
                outcome.tags_pushed = tags;
                outcome.status = if present && tags == 0 {
                    "present"
                } else {
                    "copied"
                };
                true
            }
            Err((message, status)) => {
                outcome.status = status;
                outcome.error = Some(message);
                false
            }
        };
        complete.insert(&node.repository, ok);
        outcomes.push(outcome);
    }
    progress.finish();

    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    let total_bytes: u64 = outcomes.iter().map(|o| o.bytes_uploaded).sum();
    for o in &outcomes {
        eprintln!(
            "{:9} {} {} ({}){}",
            o.status,
            o.repository,
            o.version,
            o.digest,
            o.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
    }
    eprintln!(
        "{} packages into {registry}: {total_bytes} bytes uploaded, {} failed",
        outcomes.len(),
        failed
    );
    print_json(&json!({
        "registry": registry.to_string(),
        "repositoriesCreated": created,
        "bytesUploaded": total_bytes,
        "packages": outcomes,
    }))?;
    if failed > 0 {
        return Err(Error::Incomplete {
            failed,
            total: outcomes.len(),
        });
    }
    if let Some(path) = &args.emit_xr {
        write_xr(path, xr.as_ref(), &registry, &packages)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The XR file and the input file, when given.
fn read_files(args: &MirrorArgs) -> Result<(Option<Json>, Option<Input>), Error> {
    if args.from_xr.is_none() && args.packages.is_empty() {
        return Err(Error::Usage(
            "name packages to mirror, or an XR with --from-xr".into(),
        ));
    }
    let xr = args
        .from_xr
        .as_deref()
        .map(load::yaml)
        .transpose()
        .map_err(Error::Input)?;
    let input = args
        .input
        .as_deref()
        .map(load::input_file)
        .transpose()
        .map_err(Error::Input)?;
    Ok((xr, input))
}

/// The command line's packages as an XR spec: each mapped into ECR, its
/// version chosen and its kind read from its `package.yaml`.
async fn listed_spec(args: &MirrorArgs, upstream: &Reader) -> Result<XrSpec, Error> {
    let (Some(account_id), Some(region)) = (&args.account_id, &args.region) else {
        return Err(Error::Usage(
            "--account-id and --region are required without --from-xr".into(),
        ));
    };
    let mut packages = Vec::new();
    for text in &args.packages {
        let reference = PackageRef::parse(text)?;
        let repository = upstream
            .inner()
            .repository_for(&reference.path)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "package {text:?} is under no mirror's upstream; add --mirror {}=PREFIX",
                    reference.path.split('/').next().unwrap_or_default()
                ))
            })?;
        upstream.inner().list(&repository, &reference.path);
        let version = top_version(upstream, &repository, &reference).await?;
        let digest = upstream.resolve_digest(&repository, &version).await?;
        let kind = upstream
            .package_meta(&repository, &digest)
            .await?
            .kind
            .ok_or_else(|| Error::Image {
                image: format!("{}@{digest}", reference.path),
                message: "its package.yaml is not a Provider, Function or Configuration".into(),
            })?;
        packages.push(json!({"kind": kind, "repository": repository, "version": version}));
    }
    request::spec(account_id, region, packages)
}

/// The tag or digest a command-line reference names.
async fn top_version(
    upstream: &Reader,
    repository: &str,
    reference: &PackageRef,
) -> Result<String, Error> {
    let constraint = match &reference.version {
        Requested::Version(v) if crate::names::is_digest(v) => return Ok(v.clone()),
        Requested::Version(v) => Some(Constraint::parse(v)?),
        Requested::Tag(_) | Requested::Latest => None,
    };
    let tags = upstream.list_tags(repository).await?;
    let chosen = match (&reference.version, &constraint) {
        (Requested::Tag(tag), _) => tags.iter().find(|t| *t == tag).map(String::as_str),
        (_, Some(c)) => select_highest(&[c], tags.iter().map(String::as_str)),
        // The highest release: Masterminds' >=0.0.0 admits no prerelease.
        _ => {
            let releases = Constraint::parse(">=0.0.0")?;
            select_highest(&[&releases], tags.iter().map(String::as_str))
        }
    };
    chosen.map(str::to_string).ok_or_else(|| {
        let wanted = match &reference.version {
            Requested::Tag(tag) => format!("tag {tag}"),
            Requested::Version(v) => format!("a tag satisfying {v:?}"),
            Requested::Latest => "a release tag".to_string(),
        };
        Error::NoVersion {
            package: reference.path.clone(),
            wanted,
            tags: tags.len(),
        }
    })
}

/// Reads the manifest trees of every package (and its signatures).
async fn read_images(
    upstream: &Reader,
    nodes: Vec<&PackageNode>,
    args: &MirrorArgs,
) -> Result<Vec<Package>, Error> {
    stream::iter(nodes)
        .map(|node| async move {
            let source = upstream.inner().source(&node.repository)?;
            let tags = if crate::names::is_digest(&node.version) {
                Vec::new()
            } else {
                vec![node.version.clone()]
            };
            let mut images = vec![
                Image::read(
                    upstream.inner(),
                    source.clone(),
                    node.repository.clone(),
                    node.digest.clone(),
                    tags,
                    Role::Package,
                )
                .await?,
            ];
            if args.signatures {
                images.extend(signatures(upstream, &source, node).await?);
            }
            Ok(Package {
                node: node.clone(),
                source,
                images,
            })
        })
        .buffered(usize::from(args.concurrency))
        .collect::<Vec<Result<Package, Error>>>()
        .await
        .into_iter()
        .collect()
}

/// The cosign signature and attestation tags of a package image, its
/// referrers-tag index, and what the referrers API lists for it.
async fn signatures(
    upstream: &Reader,
    source: &Source,
    node: &PackageNode,
) -> Result<Vec<Image>, Error> {
    let hex = node.digest.trim_start_matches("sha256:");
    let wanted: Vec<String> = ["sig", "att", "sbom"]
        .iter()
        .map(|suffix| format!("sha256-{hex}.{suffix}"))
        .chain([format!("sha256-{hex}")])
        .collect();
    let tags = upstream.list_tags(&node.repository).await?;
    let mut images = Vec::new();
    let mut seen = BTreeSet::new();
    for tag in wanted.iter().filter(|w| tags.contains(w)) {
        let digest = upstream.resolve_digest(&node.repository, tag).await?;
        seen.insert(digest.clone());
        images.push(
            Image::read(
                upstream.inner(),
                source.clone(),
                node.repository.clone(),
                digest,
                vec![tag.clone()],
                Role::Signature,
            )
            .await?,
        );
    }
    let client = upstream.inner().client(&source.host)?;
    let referrers = client
        .referrers(&source.repository, &node.digest)
        .await
        .map_err(|e| Error::Image {
            image: format!("{source}@{}", node.digest),
            message: format!("listing referrers: {e}"),
        })?
        .unwrap_or_default();
    for referrer in referrers {
        if seen.insert(referrer.digest.clone()) {
            images.push(
                Image::read(
                    upstream.inner(),
                    source.clone(),
                    node.repository.clone(),
                    referrer.digest,
                    Vec::new(),
                    Role::Signature,
                )
                .await?,
            );
        }
    }
    Ok(images)
}

/// Tags the package image, then its signatures.
async fn tag_all(copier: &Copier<'_>, package: &Package) -> Result<usize, Error> {
    let mut pushed = 0;
    for image in &package.images {
        pushed += copier.tag(image).await?;
    }
    Ok(pushed)
}

/// What a run would copy.
struct Plan {
    packages: Vec<Planned>,
    repositories_to_create: Vec<String>,
    /// Bytes to upload: a blob counts once whatever number of repositories
    /// need it, since the others mount it.
    bytes: u64,
}

/// Asks the target what it lacks, writing nothing.
async fn plan(
    target: &Target,
    packages: &[Package],
    existing: &BTreeSet<String>,
) -> Result<Plan, Error> {
    let mut to_copy: BTreeMap<String, u64> = BTreeMap::new();
    let mut planned = Vec::new();
    for package in packages {
        let exists = existing.contains(&package.node.repository);
        let mut blobs = 0;
        let mut bytes = 0;
        for image in &package.images {
            for blob in copy::missing(target, image, exists).await? {
                blobs += 1;
                let size = blob.size.unwrap_or_default();
                bytes += size;
                to_copy.insert(blob.digest.clone(), size);
            }
        }
        let node = &package.node;
        planned.push(Planned {
            source: package.source.to_string(),
            repository: node.repository.clone(),
            kind: node.kind.to_string(),
            version: node.version.clone(),
            digest: node.digest.clone(),
            depends_on: node.depends_on.iter().cloned().collect(),
            signatures: package
                .images
                .iter()
                .filter(|i| i.role == Role::Signature)
                .map(|i| i.tags.first().cloned().unwrap_or_else(|| i.digest.clone()))
                .collect(),
            repository_exists: exists,
            blobs_to_copy: blobs,
            bytes_to_copy: bytes,
        });
    }
    let repositories_to_create = planned
        .iter()
        .filter(|p| !p.repository_exists)
        .map(|p| p.repository.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    Ok(Plan {
        packages: planned,
        repositories_to_create,
        bytes: to_copy.values().sum(),
    })
}

fn print_plan(plan: &Plan, registry: &RegistryRef) -> Result<(), Error> {
    for p in &plan.packages {
        eprintln!(
            "{} {} -> {}:{} ({} blobs, {} bytes to copy)",
            p.kind, p.source, p.repository, p.version, p.blobs_to_copy, p.bytes_to_copy
        );
    }
    eprintln!(
        "dry run: {} packages, {} repositories to create, {} bytes to copy into {registry}",
        plan.packages.len(),
        plan.repositories_to_create.len(),
        plan.bytes
    );
    print_json(&json!({
        "registry": registry.to_string(),
        "dryRun": true,
        "repositoriesToCreate": plan.repositories_to_create,
        "bytesToCopy": plan.bytes,
        "packages": plan.packages,
    }))
}

fn print_json(value: &Json) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::File {
        path: "stdout".into(),
        message: e.to_string(),
    })?;
    println!("{text}");
    Ok(())
}

/// The XR installing the mirrored closure, every package pinned to its
/// digest, in install order; the read XR's identity is kept.
fn write_xr(
    path: &std::path::Path,
    read: Option<&Json>,
    registry: &RegistryRef,
    packages: &[Package],
) -> Result<(), Error> {
    let field = |pointer: &str, default: &str| {
        read.and_then(|xr| xr.pointer(pointer))
            .and_then(Json::as_str)
            .unwrap_or(default)
            .to_string()
    };
    let listed: Vec<Json> = packages
        .iter()
        .map(|p| {
            json!({
                "kind": p.node.kind,
                "repository": p.node.repository,
                "version": p.node.digest,
            })
        })
        .collect();
    let mut spec = read
        .and_then(|xr| xr.get("spec"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    spec["registry"] = json!({"accountId": registry.account_id, "region": registry.region});
    spec["packages"] = Json::Array(listed);
    let xr = json!({
        "apiVersion": field("/apiVersion", XR_API_VERSION),
        "kind": field("/kind", XR_KIND),
        "metadata": {"name": field("/metadata/name", "mirrored-packages")},
        "spec": spec,
    });
    let text = serde_norway::to_string(&xr).map_err(|e| Error::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    std::fs::write(path, text).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}
