//! The one error type of the project.
//!
//! Every variant says what was being done and where, so a platform engineer
//! reading a Fatal result or a Warning on the XR knows which field, package or
//! AWS call to look at. `is_transient` separates "try again later, keep what
//! you have" from "the user must change something".

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// A request field had the wrong shape (absent composite, wrong type).
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// The function input (the Composition step's `input`) failed to parse.
    #[error("invalid function input at {field}: {message}")]
    InvalidInput { field: String, message: String },

    /// The composite resource's spec failed to parse or validate.
    #[error("invalid composite resource at {field}: {message}")]
    InvalidSpec { field: String, message: String },

    /// The XR asked for something the Composition's input does not allow.
    /// Raised before any AWS call; says which XR field and which allowlist.
    #[error("refused at {field}: {message} (see the Composition input's {allowlist})")]
    Refused {
        field: String,
        allowlist: String,
        message: String,
    },

    /// A version or constraint string could not be parsed.
    #[error("invalid version constraint {constraint:?}: {message}")]
    InvalidConstraint { constraint: String, message: String },

    /// The dependency graph cannot be installed as asked.
    #[error("{0}")]
    Dependency(String),

    /// A repository the user asked for does not exist in the registry.
    #[error("repository {repository:?} not found in {registry}")]
    RepositoryNotFound {
        registry: String,
        repository: String,
    },

    /// A repository exists but holds no tagged image.
    #[error("repository {repository:?} in {registry} has no tagged images")]
    EmptyRepository {
        registry: String,
        repository: String,
    },

    /// A tag or digest does not exist in its repository.
    #[error("image {repository}:{reference} not found in {registry}: {message}")]
    ImageNotFound {
        registry: String,
        repository: String,
        reference: String,
        message: String,
    },

    /// No tag of a repository satisfies the constraints placed on it.
    #[error("no version of {repository} satisfies {constraints}")]
    Unsatisfiable {
        repository: String,
        constraints: String,
    },

    /// The registry answered, but with something that is not a valid package.
    #[error("invalid package {repository}@{digest}: {message}")]
    InvalidPackage {
        repository: String,
        digest: String,
        message: String,
    },

    /// No usable AWS credentials.
    #[error("AWS credentials: {0}")]
    Credentials(String),

    /// A package registry other than ECR (a `mirror` upstream) refused the
    /// credentials it was given, or wanted some and none were configured.
    #[error("{registry} refused access: {message}")]
    Unauthorized { registry: String, message: String },

    /// AWS or the registry could not be reached, throttled us, or timed out.
    /// Worth retrying; never a reason to drop what exists.
    #[error("registry unavailable during {operation}: {message}")]
    Unavailable { operation: String, message: String },

    /// The whole resolution ran out of its time budget.
    #[error("resolution did not finish within {seconds}s")]
    DeadlineExceeded { seconds: u64 },

    /// Failure to serve (bind, TLS material, I/O).
    #[error("{0}")]
    Server(String),

    /// A file the command line reads or writes (bootstrap).
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

impl Error {
    /// Whether the same call could succeed later without any change by the
    /// user. Transient failures keep the last good state; others are Fatal.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Unavailable { .. } | Error::DeadlineExceeded { .. } | Error::Credentials(_)
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
