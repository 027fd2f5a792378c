//! function-ecr-packages: a Crossplane composition function that installs
//! Crossplane packages from a private AWS ECR registry.

/// Every binary built on this library (the server, the benchmarks and the
/// no-op floor they compare against) allocates through mimalloc: a compose
/// builds and drops thousands of small strings and maps, and glibc's malloc
/// spent about a quarter of the server's CPU on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod aws;
pub mod bootstrap;
pub mod cli;
pub mod compose;
pub mod error;
pub mod function;
pub mod mirror;
pub mod names;
pub mod oci;
pub mod package;
pub mod proto;
pub mod reference;
pub mod registry;
pub mod resolve;
pub mod sdk;
pub mod server;
pub mod spec;
pub mod telemetry;
pub mod version;

pub use error::{Error, Result};
