//! Tagging, in install order: a package is tagged only once its content and
//! everything it depends on are complete in the target, so a tag never
//! names a package that cannot install from there.

use std::collections::HashMap;

use super::copied::Copied;
use super::copy::Copier;
use super::error::Error;
use super::image::Package;
use super::report::PackageReport;

/// Tags each package whose copy (`contents`, one per package) and
/// dependencies are complete; says what happened to each.
pub async fn in_install_order(
    copier: &Copier<'_>,
    packages: &[Package],
    contents: Vec<Result<Copied, Error>>,
) -> Vec<PackageReport> {
    let mut outcomes = Vec::new();
    let mut complete: HashMap<&str, bool> = HashMap::new();
    for (package, content) in packages.iter().zip(contents) {
        let broken: Vec<&str> = package
            .node
            .depends_on
            .iter()
            .filter(|d| !complete.get(d.as_str()).copied().unwrap_or(false))
            .map(String::as_str)
            .collect();
        let outcome = match content {
            Err(e) => PackageReport::failed(package, &e),
            Ok(copied) if !broken.is_empty() => PackageReport::untagged(package, &copied, &broken),
            Ok(copied) => PackageReport::tagged(package, &copied, tag(copier, package).await),
        };
        complete.insert(&package.node.repository, outcome.is_complete());
        outcomes.push(outcome);
    }
    outcomes
}

/// Tags the package image, then its signatures; how many tags were pushed.
async fn tag(copier: &Copier<'_>, package: &Package) -> Result<usize, Error> {
    let mut pushed = 0;
    for image in &package.images {
        pushed += copier.tag(image).await?;
    }
    Ok(pushed)
}
