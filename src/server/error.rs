//! Why the function cannot serve: its TLS material, its listeners, its
//! logger or metrics.
//!
//! Unlike the crate's [`crate::Error`], which reaches users as the text of a
//! Fatal result, this one is printed by `main` as a whole chain
//! ([`crate::error::error_chain`]): each variant's message says what was
//! being done and its `#[source]` says why, never both.

use thiserror::Error;

/// Why the function cannot serve. Each names the file, address or setting
/// involved; the cause is the source.
#[derive(Debug, Error)]
pub enum ServeError {
    #[error(
        "no TLS certificates: set --tls-certs-dir (or TLS_SERVER_CERTS_DIR) to a folder with tls.crt, tls.key and ca.crt, or pass --insecure"
    )]
    NoTls,
    #[error("reading {path}")]
    ReadFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the certificates in {path}")]
    Certificates {
        path: String,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("no PEM certificate in {path}")]
    NoCertificate { path: String },
    #[error("reading the private key in {path}")]
    PrivateKey {
        path: String,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("the private key in {key} cannot serve the certificate in {certificate}")]
    KeyMismatch {
        key: String,
        certificate: String,
        #[source]
        source: rustls::Error,
    },
    #[error("configuring TLS")]
    Tls(#[source] tonic::transport::Error),
    #[error("binding the {what} address {address}")]
    Bind {
        what: &'static str,
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the gRPC listener's address")]
    ListenerAddress(#[source] std::io::Error),
    #[error("serving gRPC on {address}")]
    Serve {
        address: std::net::SocketAddr,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("installing the {name} handler")]
    Signal {
        name: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("building gRPC reflection")]
    Reflection(#[source] tonic_reflection::server::Error),
    #[error("invalid RUST_LOG {directives:?}")]
    LogFilter {
        directives: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("installing the logger: {0}")]
    Logger(String),
    #[error("creating metrics")]
    Metrics(#[source] prometheus::Error),
}
