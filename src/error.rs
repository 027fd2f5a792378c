//! The one error type of the project.
//!
//! Every variant says what was being done and where, so a platform engineer
//! reading a Fatal result or a Warning on the XR knows which field, package or
//! AWS call to look at. `is_transient` separates "try again later, keep what
//! you have" from "the user must change something".

use thiserror::Error;

use crate::package::PackageKind;

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
    #[error(transparent)]
    Dependency(#[from] DependencyError),

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

    /// Every version of a repository that the constraints admit fails the
    /// input's supply-chain gate (`scan`); `skipped` says which and why.
    #[error("no version of {repository} passes the supply-chain gate: {skipped}")]
    SupplyChain { repository: String, skipped: String },

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

    /// The registry said no to this function's AWS identity (ECR's
    /// `AccessDeniedException`, a pull-through upstream's denial, a blob
    /// refused with a fresh token). Not an outage: a policy, or the XR's
    /// choice of registry, must change.
    #[error("{registry} denied {operation}: {message}")]
    AccessDenied {
        registry: String,
        operation: String,
        message: String,
    },

    /// The registry's host name does not exist (DNS answered: no such
    /// name), as for a region that does not exist. Not an outage.
    #[error("{operation} on {registry}: its host name does not resolve: {message}")]
    UnknownHost {
        registry: String,
        operation: String,
        message: String,
    },

    /// The registry could not be read (`cause`), and the XR's status may
    /// not stand in for it: the input does not list the registry in
    /// `allowedRegistries` and this process has never read it. Nothing new
    /// is composed; what exists is kept.
    #[error(
        "{cause}; nothing new is composed from status.packages: {registry} is not in the input's allowedRegistries and this function has not read it successfully since it started"
    )]
    NotRecomposed { registry: String, cause: Box<Error> },

    /// AWS or the registry could not be reached, throttled us, or timed out.
    /// Worth retrying; never a reason to drop what exists.
    #[error("registry unavailable during {operation}: {message}")]
    Unavailable { operation: String, message: String },

    /// The whole resolution ran out of its time budget.
    #[error("resolution did not finish within {seconds}s")]
    DeadlineExceeded { seconds: u64 },

    /// A file the command line reads or writes (bootstrap).
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

impl Error {
    /// Whether the same call could succeed later without any change by the
    /// user. Transient failures keep the last good state; others are Fatal.
    /// A registry that denies access or whose host does not resolve is not
    /// an outage: an XR could otherwise name such a registry to make the
    /// function stand its status in for it.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Unavailable { .. } | Error::DeadlineExceeded { .. } | Error::Credentials(_)
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and its sources on one line: what `main` prints.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// Whether an error's chain says a host name does not exist: the system
/// resolver's "no such name" (glibc, musl, macOS wording), as Rust's
/// lookup reports it. Its "try again" (no resolver reachable) is an
/// outage, not this.
pub fn is_unknown_host(e: &(dyn std::error::Error + 'static)) -> bool {
    const NO_SUCH_NAME: [&str; 4] = [
        "Name or service not known",
        "No address associated with hostname",
        "Name does not resolve",
        "nodename nor servname provided",
    ];
    let mut source = Some(e);
    while let Some(e) = source {
        let text = e.to_string();
        if text.contains("failed to lookup address information")
            && NO_SUCH_NAME.iter().any(|m| text.contains(m))
        {
            return true;
        }
        source = e.source();
    }
    false
}

/// Why the packages an XR asks for cannot be installed as asked, found while
/// resolving, ordering or composing them. Each says what to change.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DependencyError {
    #[error(
        "dependency resolution did not settle after {rounds} rounds; constraints keep changing the selected versions"
    )]
    Unsettled { rounds: usize },

    #[error("{field}.repository {repository:?} is under no mirror's repositoryPrefix ({prefixes})")]
    NoMirrorPrefix {
        field: String,
        repository: String,
        prefixes: String,
    },

    #[error(
        "{dependency} (a dependency of {dependent}) is outside every mirror: add a mirror whose upstream is a prefix of it (mirrors: {upstreams})"
    )]
    OutsideMirrors {
        dependency: String,
        dependent: String,
        upstreams: String,
    },

    #[error("{dependent} depends on {repository} as a {declared}, but it is wanted as a {wanted}")]
    KindConflict {
        dependent: String,
        repository: String,
        declared: PackageKind,
        wanted: PackageKind,
    },

    #[error("{package} is a {actual} package, but it is wanted as a {wanted}")]
    WrongKind {
        package: String,
        actual: PackageKind,
        wanted: PackageKind,
    },

    #[error("{dependent} declares an invalid version for {dependency}: {reason}")]
    InvalidVersion {
        dependent: String,
        dependency: String,
        reason: Box<Error>,
    },

    #[error(
        "repository {repository} ({wanted_by}) is not in the input's allowedRepositories ({allowed})"
    )]
    NotAllowed {
        repository: String,
        wanted_by: String,
        allowed: String,
    },

    #[error(
        "the packages and their dependencies are more than {max} packages, more than one XR's status can hold; split them across XRs"
    )]
    TooMany { max: usize },

    /// A dependency missing from the registry, named with who asked for it.
    #[error("{missing} (required by {parents})")]
    RequiredBy {
        missing: Box<Error>,
        parents: String,
    },

    #[error("dependency cycle: {}", .cycle.join(" -> "))]
    Cycle { cycle: Vec<String> },

    #[error(
        "package {repository} would be named {name:?}, which is not a Kubernetes name (a DNS label of at most 63 characters); set spec.packages[].name"
    )]
    NotAName { repository: String, name: String },

    #[error(
        "packages {first} and {second} would both be named {name:?}; set spec.packages[].name to tell them apart"
    )]
    SameName {
        first: String,
        second: String,
        name: String,
    },

    #[error(
        "two composed resources would both be named {name:?} ({kind} {object:?}); give the packages, mirrors or node roles that produce them distinct names"
    )]
    SameResourceName {
        name: String,
        kind: String,
        object: String,
    },

    #[error(
        "provider {provider} and its dependency {dependency} are mirrored under different first path segments ({provider_segment:?} and {dependency_segment:?}); with strategy Skip Crossplane only binds family permissions when they match, so mirror them under one prefix"
    )]
    SplitFamily {
        provider: String,
        dependency: String,
        provider_segment: String,
        dependency_segment: String,
    },

    /// `mirror`: where an ECR repository's packages come from is unknown.
    #[error("{0}")]
    UnknownSource(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::ServeError;

    #[test]
    fn denials_and_unknown_hosts_are_not_outages() {
        let text = || "x".to_string();
        let cases = [
            (
                Error::Unavailable {
                    operation: text(),
                    message: text(),
                },
                true,
            ),
            (Error::DeadlineExceeded { seconds: 30 }, true),
            (Error::Credentials(text()), true),
            (
                Error::AccessDenied {
                    registry: text(),
                    operation: text(),
                    message: text(),
                },
                false,
            ),
            (
                Error::UnknownHost {
                    registry: text(),
                    operation: text(),
                    message: text(),
                },
                false,
            ),
            (
                Error::NotRecomposed {
                    registry: text(),
                    cause: Box::new(Error::DeadlineExceeded { seconds: 30 }),
                },
                false,
            ),
        ];
        for (error, transient) in cases {
            assert_eq!(error.is_transient(), transient, "{error:?}");
        }
    }

    /// The crate's errors reach users by `Display` alone (a Fatal result or
    /// a Warning on the XR), so a wrapped cause is in the text and never a
    /// `source()` too, which `error_chain` would print a second time.
    #[test]
    fn causes_are_printed_once() {
        let cause = || Box::new(Error::DeadlineExceeded { seconds: 30 });
        let errors = [
            Error::NotRecomposed {
                registry: "r".into(),
                cause: cause(),
            },
            Error::Dependency(DependencyError::RequiredBy {
                missing: cause(),
                parents: "p".into(),
            }),
            Error::Dependency(DependencyError::InvalidVersion {
                dependent: "a".into(),
                dependency: "b".into(),
                reason: cause(),
            }),
        ];
        for error in errors {
            let shown = error.to_string();
            assert!(shown.contains("within 30s"), "{shown}");
            assert!(std::error::Error::source(&error).is_none(), "{shown}");
            assert_eq!(error_chain(&error), shown);
        }
        let serve = ServeError::ReadFile {
            path: "/tls/tls.crt".into(),
            source: std::io::Error::other("gone"),
        };
        assert_eq!(error_chain(&serve), "reading /tls/tls.crt: gone");
    }

    /// A lookup error wrapped as hyper's connector wraps it.
    #[derive(Debug, thiserror::Error)]
    #[error("dns error")]
    struct Wrapped(#[source] std::io::Error);

    #[test]
    fn unknown_hosts_are_told_from_unreachable_resolvers() {
        let lookup = |cause: &str| {
            Wrapped(std::io::Error::other(format!(
                "failed to lookup address information: {cause}"
            )))
        };
        for (cause, unknown) in [
            ("Name or service not known", true),
            ("No address associated with hostname", true),
            ("Name does not resolve", true),
            ("nodename nor servname provided, or not known", true),
            ("Temporary failure in name resolution", false),
            ("Try again", false),
        ] {
            assert_eq!(is_unknown_host(&lookup(cause)), unknown, "{cause}");
        }
        let refused = Wrapped(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(!is_unknown_host(&refused));
    }
}
