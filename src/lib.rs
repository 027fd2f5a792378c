//! function-ecr-packages: a Crossplane composition function that installs
//! Crossplane packages from a private AWS ECR registry.
//!
//! # Layout
//!
//! Start at [`function`]: its `mod.rs` is the story of one RunFunction call,
//! and every other module is a chapter of it or a tool it uses.
//!
//! The call, in the order it happens:
//! - `function/`: one RunFunction call. `mod.rs` tells it; the files beside
//!   it exist only for it: `observed` (the composed objects Crossplane sent,
//!   read once, each ready or not by its kind's rule: a package only once on
//!   its `spec.package`), `memory` (`status.packages`: its schema, and the last
//!   resolved set read back and re-validated), `ownership` (who holds each
//!   object in a cluster shared by many XRs), `rollout` (how an installed
//!   package moves to a new release: paced, health-gated, rolled back and
//!   quarantined when it does not turn healthy), `activation` (whether the
//!   definitions the XR's activation policy asks for are active yet),
//!   `admission` (the one gating
//!   rule), `leaving` and `package_lock` (removal order, with Crossplane's
//!   package Lock), `report` (conditions and events), `memo` (the last
//!   answer per XR).
//! - `spec/`: what is asked. The XR's spec (untrusted), the Composition's
//!   input (the platform's policy), the settings they resolve to, their
//!   bounds, what may be activated (`activation`), the scan policy
//!   (`scan`), the signing authorities (`verify`), Go's globs (`glob`), and
//!   `load` for reading them from files.
//! - `resolve/`: from the packages asked for to the dependency-closed
//!   install graph, read from the registry the way Crossplane resolves,
//!   passing over quarantined releases, those ECR's scan refuses (`scan`)
//!   and those no authority has signed (`signature`).
//! - `version/`: Masterminds/semver constraints and Crossplane's tag rules.
//! - `compose/`: the objects to create: the activation policy, package
//!   objects and ImageConfigs, the IAM role, policy and attachments, and
//!   Crossplane's own signature verification (`verification`).
//!
//! The tools it uses:
//! - `registry/`: the [`registry::Registry`] trait, the ECR client, the
//!   cache that makes a warm reconcile free, credentials, connectors,
//!   scan findings read into one bounded report (`scan`), and where ECR
//!   keeps cosign signatures (`ecr::signatures`).
//! - [`signature`]: cosign signatures verified offline: public keys, the
//!   simple-signing payload, the Sigstore bundle, one signature judged
//!   against the authorities' keys or (keyless) trusted roots.
//! - `oci/`: the OCI wire plumbing shared by ECR and `mirror`: the
//!   distribution API client, reading a package out of an image, streaming
//!   a layer through its digest check, reading the cosign signatures
//!   stored beside an image (`signatures`).
//! - [`reference`](mod@reference): the OCI reference grammar and digest verification;
//!   [`names`]: every name check and builder; [`package`]: what a package
//!   is to the resolver; [`aws`]: account, region and registry host.
//! - `sdk/` and [`proto`]: the function protocol, typed; `sdk/protobuf`
//!   holds its `google.protobuf.Struct`, fields as a list of entries.
//!
//! Around the call:
//! - `main.rs`, [`cli`]: the entry point and its flags.
//! - `server/`: gRPC with mutual TLS, health, reflection, call and read
//!   limits, gRPC metrics, the codec that reads messages from their
//!   bytes; [`telemetry`]: logging and `/metrics`.
//! - [`bootstrap`]: the same engine, once, from the command line, for a
//!   fresh cluster.
//! - `mirror/`: copying packages and their dependency closure into ECR.
//! - [`error`]: the crate's error and `error_chain`.
//! - `keyless/`: offline Sigstore keyless verification (a Fulcio
//!   certificate, its Rekor entry, a trusted root), called by `signature`
//!   for the input's keyless authorities.
//!
//! `scripts/cycles` checks that no file of `src/` imports, directly or
//! not, one that imports it back.

#![forbid(unsafe_code)]

/// Every binary built on this library (the server, the benchmarks and the
/// no-op floor they compare against) allocates through mimalloc: a compose
/// builds and drops thousands of small strings and maps, and glibc's malloc
/// spent about a quarter of the server's CPU on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// The call and what it is made of.
mod compose;
pub mod function;
mod resolve;
pub mod spec;
pub mod version;

// The tools it uses.
pub mod aws;
pub mod names;
pub mod oci;
pub mod package;
pub mod proto;
pub mod reference;
pub mod registry;
pub mod sdk;
pub mod signature;

// Around the call.
pub mod bootstrap;
pub mod cli;
pub mod error;
mod keyless;
pub mod mirror;
pub mod server;
pub mod telemetry;

pub use error::{Error, Result};
pub use function::Function;
