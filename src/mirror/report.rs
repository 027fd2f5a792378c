//! What a run tells: per package, what happened to it (a line each on
//! stderr, a JSON summary on stdout), or for a dry run, the plan.

use serde::Serialize;
use serde_json::{Value as Json, json};

use super::copied::Copied;
use super::error::Error;
use super::image::Package;
use super::plan::Plan;
use crate::aws::RegistryRef;
use crate::error::error_chain;

/// How a package ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Something was written: content or tags.
    Copied,
    /// Nothing to do: all was there.
    Present,
    Failed,
    /// Its content is there but something it depends on failed.
    Untagged,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Status::Copied => "copied",
            Status::Present => "present",
            Status::Failed => "failed",
            Status::Untagged => "untagged",
        })
    }
}

/// What a run did for one package.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageReport {
    source: String,
    repository: String,
    kind: String,
    version: String,
    digest: String,
    status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    bytes_uploaded: u64,
    blobs_uploaded: usize,
    blobs_mounted: usize,
    manifests_pushed: usize,
    tags_pushed: usize,
}

impl PackageReport {
    /// A package whose copy failed.
    pub fn failed(package: &Package, error: &Error) -> Self {
        Self::of(package, &Copied::default(), Status::Failed, Some(error))
    }

    /// A package copied but left untagged, since `broken` (what it depends
    /// on) did not mirror.
    pub fn untagged(package: &Package, copied: &Copied, broken: &[&str]) -> Self {
        let mut outcome = Self::of(package, copied, Status::Untagged, None);
        outcome.error = Some(format!("not tagged: {} did not mirror", broken.join(", ")));
        outcome
    }

    /// A package copied whose tagging pushed `tags` tags, or failed.
    pub fn tagged(package: &Package, copied: &Copied, tags: Result<usize, Error>) -> Self {
        match tags {
            Ok(tags) => {
                let status = if copied.present && tags == 0 {
                    Status::Present
                } else {
                    Status::Copied
                };
                let mut outcome = Self::of(package, copied, status, None);
                outcome.tags_pushed = tags;
                outcome
            }
            Err(e) => Self::of(package, copied, Status::Failed, Some(&e)),
        }
    }

    /// Whether the package is complete in the target: its content and tags.
    pub fn is_complete(&self) -> bool {
        self.error.is_none()
    }

    fn of(package: &Package, copied: &Copied, status: Status, error: Option<&Error>) -> Self {
        let node = &package.node;
        PackageReport {
            source: package.source.to_string(),
            repository: node.repository.clone(),
            kind: node.kind.to_string(),
            version: node.version.clone(),
            digest: node.digest.clone(),
            status,
            error: error.map(|e| error_chain(e)),
            bytes_uploaded: copied.bytes_uploaded,
            blobs_uploaded: copied.blobs_uploaded,
            blobs_mounted: copied.blobs_mounted,
            manifests_pushed: copied.manifests_pushed,
            tags_pushed: 0,
        }
    }
}

/// Prints what happened to each package, then the JSON summary; fails
/// when any package did not mirror.
pub fn summary(
    registry: &RegistryRef,
    created: &[String],
    outcomes: &[PackageReport],
) -> Result<(), Error> {
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    let total_bytes: u64 = outcomes.iter().map(|o| o.bytes_uploaded).sum();
    for o in outcomes {
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
    Ok(())
}

/// Prints the plan of a dry run.
pub fn dry_run(plan: &Plan, registry: &RegistryRef) -> Result<(), Error> {
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
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Write {
        path: "stdout".into(),
        source: Box::new(e),
    })?;
    println!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_before() {
        assert_eq!(format!("{:9}|", Status::Copied), "copied   |");
        assert_eq!(json!(Status::Untagged), json!("untagged"));
        assert_eq!(json!(Status::Present), json!("present"));
    }
}
