//! Tagging, in install order: a package is tagged only once its content and
//! everything it depends on are complete in the target, so a tag never
//! names a package that cannot install from there.

use std::collections::HashMap;

use futures::stream::{self, StreamExt};

use super::copied::Copied;
use super::copy::Copier;
use super::error::Error;
use super::image::Package;
use super::report::PackageReport;

/// Tags each package whose copy (`contents`, one per package) and
/// dependencies are complete; says what happened to each, in the order
/// given. Packages are tagged in waves, `concurrency` at once: a package
/// waits for the wave of its deepest dependency.
pub async fn in_install_order(
    copier: &Copier<'_>,
    packages: &[Package],
    contents: Vec<Result<Copied, Error>>,
    concurrency: usize,
) -> Vec<PackageReport> {
    let waves = waves(packages);
    let mut contents: Vec<Option<Result<Copied, Error>>> = contents.into_iter().map(Some).collect();
    let mut outcomes: Vec<Option<PackageReport>> = packages.iter().map(|_| None).collect();
    let mut complete: HashMap<&str, bool> = HashMap::new();
    for wave in waves {
        let done: Vec<(usize, PackageReport)> = stream::iter(wave)
            .map(|i| {
                let package = &packages[i];
                let content = contents[i].take();
                let complete = &complete;
                async move { (i, outcome(copier, package, content, complete).await) }
            })
            .buffered(concurrency.max(1))
            .collect()
            .await;
        for (i, outcome) in done {
            complete.insert(&packages[i].node.repository, outcome.is_complete());
            outcomes[i] = Some(outcome);
        }
    }
    outcomes.into_iter().flatten().collect()
}

/// Tags one package if its content and its dependencies are complete.
async fn outcome(
    copier: &Copier<'_>,
    package: &Package,
    content: Option<Result<Copied, Error>>,
    complete: &HashMap<&str, bool>,
) -> PackageReport {
    let broken: Vec<&str> = package
        .node
        .depends_on
        .iter()
        .filter(|d| !complete.get(d.as_str()).copied().unwrap_or(false))
        .map(String::as_str)
        .collect();
    match content.unwrap_or_else(|| Ok(Copied::none())) {
        Err(e) => PackageReport::failed(package, &e),
        Ok(copied) if !broken.is_empty() => PackageReport::untagged(package, &copied, &broken),
        Ok(copied) => PackageReport::tagged(package, &copied, tag(copier, package).await),
    }
}

/// The packages (by index, in install order) in waves: a package with no
/// dependency among them in the first, any other in the wave after its
/// deepest dependency's.
fn waves(packages: &[Package]) -> Vec<Vec<usize>> {
    let mut depth: HashMap<&str, usize> = HashMap::new();
    let mut waves: Vec<Vec<usize>> = Vec::new();
    for (i, package) in packages.iter().enumerate() {
        let wave = package
            .node
            .depends_on
            .iter()
            .filter_map(|d| depth.get(d.as_str()))
            .map(|d| d + 1)
            .max()
            .unwrap_or(0);
        depth.insert(&package.node.repository, wave);
        if waves.len() <= wave {
            waves.resize_with(wave + 1, Vec::new);
        }
        waves[wave].push(i);
    }
    waves
}

/// Tags the package image, then its signatures; how many tags were pushed.
async fn tag(copier: &Copier<'_>, package: &Package) -> Result<usize, Error> {
    let mut pushed = 0;
    for image in &package.images {
        pushed += copier.tag(image).await?;
    }
    Ok(pushed)
}
