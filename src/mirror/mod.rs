//! `mirror`: copy packages and their whole dependency closure from their
//! upstream registries into ECR, digests intact.
//!
//! The story of a run, as [`run`] tells it:
//! 1. Read what to mirror (`request`): package references, or an XR's
//!    packages; the mirror table maps each upstream path to an ECR
//!    repository.
//! 2. Resolve the closure with the function's own resolver (`closure`),
//!    reading tags and `package.yaml` from upstream (`upstream`); with
//!    `--verify-with`, through the signature gate, signatures read
//!    upstream: a package with no signed version refuses the run.
//! 3. Read each resolved image's manifest tree and, asked to, its
//!    signatures (`image`), while connecting to ECR (`target`); ask ECR
//!    what it already holds (`plan`).
//! 4. `--dry-run` prints that plan and stops. Otherwise: create missing
//!    repositories, copy content (`copy`, each blob uploaded once per run
//!    through `holders`, a few bodies streaming at once through
//!    `streaming`, shown by `progress`), then
//!    tag in install order, a package only when it and everything it
//!    depends on is complete (`tag`).
//! 5. Print a per-package summary, JSON on stdout (`report`);
//!    `--emit-xr` writes the XR that installs what was mirrored, pinned to
//!    its digests (`xr`).
//!
//! The command line is `args`; what can go wrong, `error`.

mod args;
mod closure;
mod copied;
mod copy;
mod error;
mod holders;
mod image;
mod plan;
mod progress;
mod report;
mod request;
mod streaming;
mod tag;
mod target;
mod upstream;
mod xr;

pub use args::{Endpoint, MirrorArgs};
pub use error::Error;

use copy::{Copier, Sending};
use image::Reading;
use plan::Plan;
use progress::Progress;
use request::MirrorRequest;
use target::Target;
use upstream::Upstream;

/// Runs `mirror` with the command line's arguments.
pub async fn run(args: &MirrorArgs) -> Result<(), Error> {
    // 1. What to mirror, and where each upstream path goes in ECR.
    let request = MirrorRequest::read(args)?;
    let mirrors = request.mirrors(args);
    let upstream = Upstream::new(mirrors.clone(), args.endpoints(), args.timeout()).cached();
    let spec = request.spec(args, &upstream).await?;
    let registry = args.registry(&spec);

    // 2. The dependency closure, resolved upstream, and 3. the images of
    // each package; ECR is connected to (credentials, a token) meanwhile,
    // as neither waits for the other. Then what ECR lacks of them.
    let reading = Reading {
        signatures: args.signatures,
        concurrency: args.concurrency(),
    };
    let closure = async {
        let graph = closure::resolve(&spec, &request.input(mirrors), &upstream).await?;
        image::read_packages(&upstream, graph.install_order(), &reading).await
    };
    let target = Target::connect(
        registry.clone(),
        args.registry_host.as_deref(),
        args.timeout(),
    );
    let (packages, target) = tokio::try_join!(closure, target)?;
    let plan = Plan::make(&target, &packages).await?;

    // 4. A dry run stops at the plan; a run creates, copies, then tags.
    if args.dry_run {
        return report::dry_run(&plan, &registry);
    }
    let progress = Progress::new(plan.bytes);
    let sending = Sending {
        chunk_size: args.chunk_size(),
        transfers: args.transfers(),
        streams: args.streams(),
    };
    let copier = Copier::new(upstream.inner(), &target, &progress, &plan, sending);
    let options = args.repository_options();
    let created = target
        .create_repositories(&plan.repositories_to_create, &options)
        .await?;
    let contents = copy::packages(&copier, &packages, args.concurrency()).await;
    let outcomes = tag::in_install_order(&copier, &packages, contents, args.concurrency()).await;
    progress.finish();

    // 5. The summary, then the XR that installs what was mirrored.
    report::summary(&registry, &created, &outcomes)?;
    if let Some(path) = &args.emit_xr {
        xr::write(path, request.xr.as_ref(), &registry, &packages)?;
    }
    Ok(())
}
