//! Helpers shared by the integration tests. Each `tests/*.rs` is a crate of
//! its own and takes them with `mod support;` and `use support::cluster;`
//! (or `localecr`, `policy`).
//!
//! - `cluster`: a reconcile simulator that plays Crossplane around the
//!   function, and the CRD schemas composed objects are checked against.
//! - `localecr`: the local ECR stand-in (moto and docker-registry). A binary
//!   that needs it starts it before `main` with a `#[ctor]` calling
//!   [`localecr::start_unless_running`]; taking the module alone starts
//!   nothing.
//! - `cosign`: the real cosign CLI, signing images in the local registries.
//! - `policy`: the platform policy the trust and server tests use.
//! - `recorder`: a TCP relay that records what clients send through it.

// Every test binary compiles all of `support` but calls only some of it, so
// each would otherwise warn about the helpers only the others use.
#![allow(dead_code)]

pub mod cluster;
pub mod cosign;
pub mod localecr;
pub mod policy;
pub mod recorder;
