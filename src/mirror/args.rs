//! The command line of `mirror`: its flags, and what they mean to the
//! steps of a run (timeouts, endpoints, the target registry, how new
//! repositories are set up).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::target::RepositoryOptions;
use crate::aws::RegistryRef;
use crate::spec::XrSpec;
use crate::spec::input::Mirror;

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

    /// A function input (an Input, or a Composition calling the function)
    /// whose `verify` authorities gate what is copied, as the function
    /// gates what it installs: each package is taken at its highest
    /// version signed upstream by an authority covering its ECR
    /// repository, and a package with none refuses the run, named. Without
    /// it, no input's `verify` applies to mirroring.
    #[arg(long, value_name = "INPUT")]
    pub verify_with: Option<PathBuf>,

    /// `UPSTREAM=PREFIX`: packages under UPSTREAM go to ECR repositories
    /// under PREFIX, as the input's `mirrors`. Repeatable.
    #[arg(long = "mirror", value_name = "UPSTREAM=PREFIX", value_parser = parse_mirror)]
    pub mirror: Vec<Mirror>,

    /// `HOST=URL`: read the upstream registry HOST from URL instead (a
    /// pull-through proxy in front of it); package paths keep HOST.
    /// Repeatable.
    #[arg(long = "upstream-endpoint", value_name = "HOST=URL", value_parser = parse_endpoint)]
    pub upstream_endpoints: Vec<Endpoint>,

    /// Images copied (and tagged) at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,

    /// Blob uploads and mounts in flight at once, over the whole run.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub transfers: u16,

    /// Of those, uploads whose bodies stream at once (read from upstream,
    /// checked, sent to ECR; each through a few hundred KiB of memory). An
    /// upload whose body is all sent waits for ECR to commit it without
    /// holding one, so the next body flows while ECR stores the last.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub streams: u16,

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

    /// Upload blobs larger than this in chunks of this size, in bytes, each
    /// chunk held in memory: for a registry that caps request bodies (not
    /// ECR, reported to drop the body of every chunk after the first).
    /// Without it, each blob is streamed in one request, whatever its size.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1024..=1024 * 1024 * 1024))]
    pub chunk_size: Option<u64>,

    /// Bound on each registry request, in seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

impl MirrorArgs {
    /// Bound on each registry request.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout.max(1))
    }

    /// Images copied (and read) at once.
    pub fn concurrency(&self) -> usize {
        usize::from(self.concurrency)
    }

    /// Blob transfers at once.
    pub fn transfers(&self) -> usize {
        usize::from(self.transfers)
    }

    /// Blob bodies streaming at once.
    pub fn streams(&self) -> usize {
        usize::from(self.streams)
    }

    /// Size of the chunks large blobs are uploaded in, in bytes, if they
    /// are.
    pub fn chunk_size(&self) -> Option<usize> {
        self.chunk_size.and_then(|n| usize::try_from(n).ok())
    }

    /// Registry host -> the endpoint it is read from instead.
    pub fn endpoints(&self) -> BTreeMap<String, String> {
        self.upstream_endpoints
            .iter()
            .map(|e| (e.host.clone(), e.url.clone()))
            .collect()
    }

    /// The registry written into: the flags' account and region, else the
    /// spec's.
    pub fn registry(&self, spec: &XrSpec) -> RegistryRef {
        RegistryRef::new(
            self.account_id
                .as_deref()
                .unwrap_or(&spec.registry.account_id),
            self.region.as_deref().unwrap_or(&spec.registry.region),
        )
    }

    /// How the repositories a run creates are set up.
    pub fn repository_options(&self) -> RepositoryOptions {
        RepositoryOptions {
            immutable_tags: self.immutable_tags,
            scan_on_push: self.scan_on_push,
            kms_key: self.kms_key.clone(),
        }
    }
}

/// `--upstream-endpoint HOST=URL`: the registry HOST is read from URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub url: String,
}

/// `--upstream-endpoint HOST=URL`.
pub fn parse_endpoint(text: &str) -> Result<Endpoint, String> {
    let (host, url) = text.split_once('=').ok_or_else(|| {
        format!("{text:?}: expected HOST=URL, e.g. xpkg.upbound.io=https://proxy.example.com")
    })?;
    if host.is_empty() || host.contains('/') {
        return Err(format!("{text:?}: {host:?} is not a registry host"));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("{text:?}: {url:?} is not an http(s) URL"));
    }
    Ok(Endpoint {
        host: host.to_string(),
        url: url.trim_end_matches('/').to_string(),
    })
}

/// `--mirror UPSTREAM=PREFIX`.
pub fn parse_mirror(text: &str) -> Result<Mirror, String> {
    let (upstream, prefix) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected UPSTREAM=PREFIX, e.g. xpkg.upbound.io/="))?;
    if upstream.is_empty() {
        return Err(format!("{text:?}: the upstream prefix is empty"));
    }
    Ok(Mirror {
        upstream: upstream.to_string(),
        repository_prefix: prefix.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_flags() {
        assert_eq!(
            parse_mirror("xpkg.upbound.io/=mirror/").expect("parses"),
            Mirror {
                upstream: "xpkg.upbound.io/".into(),
                repository_prefix: "mirror/".into()
            }
        );
        assert_eq!(
            parse_mirror("127.0.0.1:5000/=")
                .expect("parses")
                .repository_prefix,
            ""
        );
        assert!(parse_mirror("xpkg.upbound.io/").is_err());
        assert!(parse_mirror("=x").is_err());
    }

    #[test]
    fn endpoint_flags() {
        assert_eq!(
            parse_endpoint("xpkg.upbound.io=http://127.0.0.1:5000/").expect("parses"),
            Endpoint {
                host: "xpkg.upbound.io".to_string(),
                url: "http://127.0.0.1:5000".to_string()
            }
        );
        for bad in ["xpkg.upbound.io", "=http://x", "a/b=http://x", "x=ftp://y"] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
    }
}
