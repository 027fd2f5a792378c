//! A client of the OCI distribution API (`/v2/...`): what the `mirror`
//! command reads from an upstream package registry and writes into ECR's
//! data plane.
//!
//! Authentication follows the registry's `WWW-Authenticate` challenge: a
//! `Bearer` challenge is answered with a token from its realm (anonymous, or
//! with the Basic credentials of the Docker config file), a `Basic` one with
//! those credentials. ECR's data plane takes the `GetAuthorizationToken`
//! token as a fixed `Basic` header ([`Auth::Header`]). Registries on
//! `localhost` or `127.0.0.1` are spoken to over plain HTTP, as
//! go-containerregistry (and so Crossplane) does; every other over HTTPS.
//!
//! * `client`: one registry host ([`Distribution`]) and how a request is sent.
//! * `auth`, `token`, `challenge`: credentials, the handshake, its header.
//! * `tags`, `manifests`, `blobs`, `upload`: the API, by what it moves;
//!   `hashing` checks a blob's digest off the async workers, `body`
//!   streams one into an upload.
//! * `hosts`, `redact`: where credentials may go, and keeping them out of
//!   messages.

mod auth;
mod blobs;
mod body;
mod challenge;
mod client;
mod error;
mod hashing;
mod hosts;
mod manifests;
mod redact;
mod tags;
mod token;
mod upload;

#[cfg(test)]
mod tests;

pub use auth::{
    Auth, docker_config_auth, docker_config_realm_hosts, realm_hosts_from_docker_config,
};
pub use blobs::BlobStream;
pub use challenge::Challenge;
pub use client::Distribution;
pub use error::{Error, Result};
pub use hosts::is_plain_http;
pub use redact::{redact, redact_text};
pub use upload::{BlobPush, Pushed};
