//! What can go wrong talking to a registry. Every message names the
//! request and URL (redacted); a transport failure carries its whole
//! cause chain in its message, which is how callers show it.

use reqwest::{Method, StatusCode};

use crate::oci::xpkg::error_chain;
use crate::reference;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A transport failure. `message` is the whole cause chain, shown
    /// here because callers turn this error into text; so it has no
    /// `source()`, which would print the cause a second time.
    #[error("{method} {url}: {message}")]
    Http {
        method: Method,
        url: String,
        message: String,
    },
    #[error("{method} {url}: HTTP {status}{detail}")]
    Status {
        method: Method,
        url: String,
        status: StatusCode,
        detail: String,
    },
    #[error("{url}: the registry refused our credentials (HTTP {status}){detail}")]
    Unauthorized {
        url: String,
        status: StatusCode,
        detail: String,
    },
    #[error("{url}: {message}")]
    Invalid { url: String, message: String },
    #[error("{registry}: {message}")]
    Config { registry: String, message: String },
    /// A reference off the grammar, or bytes that do not hash to their
    /// digest.
    #[error(transparent)]
    Reference(#[from] reference::Error),
    /// Credentials or a request a registry asked for that would leave the
    /// registry host (another host, plain HTTP): refused, nothing sent.
    #[error("{url}: {message}; nothing was sent there")]
    OffHost { url: String, message: String },
}

impl Error {
    /// Whether the registry said the thing asked for is not there.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Status { status, .. } if *status == StatusCode::NOT_FOUND)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A transport failure, with the URL taken out of the error itself: a
/// redirect's presigned URL carries credentials in its query, and only the
/// redacted `url` may reach a message.
pub(super) fn http_error(method: Method, url: String, source: reqwest::Error) -> Error {
    Error::Http {
        method,
        url,
        message: error_chain(&source.without_url()),
    }
}
