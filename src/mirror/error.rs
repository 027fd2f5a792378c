//! What can go wrong in `mirror`. Each variant's message says what was
//! being done and to what; the cause, when there is one, is its `source()`
//! and not part of the message, so the error chain prints it once.

use crate::oci::distribution;

/// A library's error (the AWS SDK's, an encoder's, the file system's),
/// kept as the cause.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command line that cannot work.
    #[error("{0}")]
    Usage(String),
    /// Writing a file, or stdout, failed.
    #[error("{path}")]
    Write {
        path: String,
        #[source]
        source: Cause,
    },
    /// The resolver (or the XR spec it reads) failed.
    #[error("resolving the packages")]
    Resolve(#[source] crate::Error),
    /// The XR or input file could not be read.
    #[error(transparent)]
    Input(crate::Error),
    /// An ECR API call failed.
    #[error("ECR {operation}")]
    Ecr {
        operation: &'static str,
        #[source]
        source: Cause,
    },
    /// An ECR API call about one repository failed.
    #[error("ECR {operation}: {repository}")]
    Repository {
        operation: &'static str,
        repository: String,
        #[source]
        source: Cause,
    },
    /// ECR answered GetAuthorizationToken without a token.
    #[error("ECR GetAuthorizationToken: no authorization token in the answer")]
    NoToken,
    /// ECR's registry API refused or failed a read or a write.
    #[error("writing to ECR")]
    Target(#[source] Box<distribution::Error>),
    #[error("copying blob {digest} of {image}")]
    Blob {
        image: String,
        digest: String,
        #[source]
        source: Box<distribution::Error>,
    },
    /// An upstream image `mirror` will not copy; `message` says why.
    #[error("{image}: {message}")]
    Image { image: String, message: String },
    /// An upstream manifest names a digest off the grammar.
    #[error("{image}")]
    Digest {
        image: String,
        #[source]
        source: crate::reference::Error,
    },
    #[error("{image}: listing referrers")]
    Referrers {
        image: String,
        #[source]
        source: Box<distribution::Error>,
    },
    #[error("{package} has no {wanted} (it has {tags} tags)")]
    NoVersion {
        package: String,
        wanted: String,
        tags: usize,
    },
    /// Packages with no version the signature (or scan) gate passes.
    #[error("the supply-chain gate refuses to copy {packages}")]
    Refused { packages: String },
    #[error("{failed} of {total} packages were not mirrored (see the summary)")]
    Incomplete { failed: usize, total: usize },
}

impl Error {
    /// The process exit code: 2 for a command line that cannot work, 1 for
    /// anything that failed while working.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            _ => 1,
        }
    }

    /// A failed read or write of ECR's registry API.
    pub fn target(e: distribution::Error) -> Self {
        Error::Target(Box::new(e))
    }
}

impl From<crate::Error> for Error {
    fn from(e: crate::Error) -> Self {
        Error::Resolve(e)
    }
}
