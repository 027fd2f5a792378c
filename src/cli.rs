//! The command line, with the flags and environment variables Crossplane's
//! function runtime and its Go SDK use, so pod templates carry over.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{ArgAction, Args, Parser, Subcommand, builder::BoolishValueParser};

use crate::server::{Config, Security, ServeError, ServerLimits};

const MIB: usize = 1024 * 1024;

#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags for serving, which is what runs when no subcommand is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

impl Cli {
    /// The command to run; serving when none was named.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve RunFunction over gRPC (the default).
    Serve(ServeArgs),
    /// Resolve an XR once and write the manifests and Helm values that
    /// install Crossplane and its packages from ECR on a fresh cluster.
    Bootstrap(crate::bootstrap::BootstrapArgs),
    /// Copy packages and their whole dependency closure from their upstream
    /// registries into ECR, digests and annotations intact.
    Mirror(crate::mirror::MirrorArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to serve gRPC on.
    #[arg(long, env = "ADDRESS", default_value = "0.0.0.0:9443")]
    pub address: SocketAddr,

    /// Serve plain HTTP/2, without TLS. Wins over --tls-certs-dir.
    #[arg(long, env = "INSECURE", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub insecure: bool,

    /// Folder with tls.crt, tls.key and ca.crt; callers must present a
    /// certificate signed by ca.crt.
    #[arg(long, env = "TLS_SERVER_CERTS_DIR")]
    pub tls_certs_dir: Option<PathBuf>,

    /// Log at debug level.
    #[arg(long, env = "DEBUG", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub debug: bool,

    /// Largest request accepted, in MiB.
    #[arg(
        long,
        env = "MAX_RECV_MESSAGE_SIZE",
        default_value_t = 4,
        value_parser = clap::value_parser!(u16).range(1..=4095)
    )]
    pub max_recv_message_size: u16,

    /// Address to serve Prometheus metrics on, at /metrics.
    #[arg(long, env = "METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
    pub metrics_address: SocketAddr,

    /// RunFunction calls in flight at once, across all connections. A call
    /// beyond it is answered RESOURCE_EXHAUSTED at once, before its request
    /// is read (load shedding, not queueing). Health checks and reflection
    /// do not count and are always answered.
    #[arg(
        long,
        env = "MAX_CONCURRENT_CALLS",
        default_value_t = ServerLimits::DEFAULT_MAX_CONCURRENT_CALLS as u32,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    pub max_concurrent_calls: u32,

    /// Admitted RunFunction calls whose requests are read at once. The
    /// others wait, their requests held back by HTTP/2 flow control, so the
    /// memory requests take is bounded by this rather than by
    /// --max-concurrent-calls.
    #[arg(
        long,
        env = "MAX_CONCURRENT_READS",
        default_value_t = ServerLimits::DEFAULT_MAX_CONCURRENT_READS as u32,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    pub max_concurrent_reads: u32,

    /// Calls one connection may have open at once (HTTP/2
    /// SETTINGS_MAX_CONCURRENT_STREAMS). gRPC clients hold further calls
    /// until one finishes, so a single client such as Crossplane, which keeps
    /// one connection per function, is slowed rather than refused while this
    /// is no larger than --max-concurrent-calls.
    #[arg(
        long,
        env = "MAX_STREAMS_PER_CONNECTION",
        default_value_t = ServerLimits::DEFAULT_MAX_STREAMS_PER_CONNECTION,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    pub max_streams_per_connection: u32,

    /// Open gRPC connections. A connection beyond it is closed as soon as it
    /// is accepted; its client sees it drop and may retry.
    #[arg(
        long,
        env = "MAX_CONNECTIONS",
        default_value_t = ServerLimits::DEFAULT_MAX_CONNECTIONS as u32,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    pub max_connections: u32,

    /// How often to ping a client over an HTTP/2 connection to check it is
    /// still there (e.g. 30s, 2m); 0 never pings.
    #[arg(
        long,
        env = "HTTP2_KEEPALIVE_INTERVAL",
        default_value = "60s",
        value_parser = duration
    )]
    pub http2_keepalive_interval: Duration,

    /// How long a ping may go unanswered before the connection is closed
    /// and its calls cancelled.
    #[arg(
        long,
        env = "HTTP2_KEEPALIVE_TIMEOUT",
        default_value = "20s",
        value_parser = positive_duration
    )]
    pub http2_keepalive_timeout: Duration,

    /// Idle time on a connection before TCP keepalive probes are sent; 0
    /// sends none.
    #[arg(long, env = "TCP_KEEPALIVE", default_value = "60s", value_parser = duration)]
    pub tcp_keepalive: Duration,

    /// Memory for package metadata read from ECR (immutable, kept until
    /// evicted), in MiB.
    #[arg(long, env = "CACHE_METADATA_MIB", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub cache_metadata_mib: u32,

    /// Memory for tag lists and tag -> digest answers, in MiB each.
    #[arg(long, env = "CACHE_TAGS_MIB", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub cache_tags_mib: u32,

    /// Memory for image manifests, per registry client, in MiB.
    #[arg(long, env = "CACHE_MANIFESTS_MIB", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub cache_manifests_mib: u32,

    /// Memory for the last answer per XR, given again while nothing it
    /// depends on changes, in MiB (0 keeps none).
    #[arg(long, env = "MEMO_MIB", default_value_t = 32, value_parser = clap::value_parser!(u32).range(0..=4096))]
    pub memo_mib: u32,

    /// How long a registry failure that may pass (unreachable, throttled,
    /// timed out) is answered from memory before ECR is asked again.
    #[arg(long, env = "CACHE_TRANSIENT_BACKOFF", default_value = "2s", value_parser = duration)]
    pub cache_transient_backoff: Duration,

    /// How long a definitive failure (repository or image not found, invalid
    /// package) is answered from memory.
    #[arg(long, env = "CACHE_NEGATIVE_TTL", default_value = "30s", value_parser = duration)]
    pub cache_negative_ttl: Duration,
}

impl ServeArgs {
    /// The registry caches' budgets and failure memory these flags ask for.
    pub fn cache_options(&self) -> crate::registry::cache::CacheOptions {
        let mib = |n: u32| u64::from(n) * MIB as u64;
        crate::registry::cache::CacheOptions {
            meta_bytes: mib(self.cache_metadata_mib),
            tag_bytes: mib(self.cache_tags_mib),
            transient_backoff: self.cache_transient_backoff,
            negative_ttl: self.cache_negative_ttl,
            ..crate::registry::cache::CacheOptions::default()
        }
    }

    /// Bytes of answers kept per XR.
    pub fn memo_bytes(&self) -> u64 {
        u64::from(self.memo_mib) * MIB as u64
    }

    /// Bytes of manifests each ECR client keeps.
    pub fn manifest_cache_bytes(&self) -> u64 {
        u64::from(self.cache_manifests_mib) * MIB as u64
    }
}

/// A duration as Go writes them (`500ms`, `20s`, `1m30s`, `2h`, `0`): the
/// function input's parser, so flags and the input read durations alike.
fn duration(text: &str) -> std::result::Result<Duration, String> {
    crate::spec::duration::parse(text)
}

fn positive_duration(text: &str) -> std::result::Result<Duration, String> {
    match duration(text)? {
        Duration::ZERO => Err("must be more than 0".to_string()),
        positive => Ok(positive),
    }
}

/// Zero turns a keepalive off.
fn enabled(duration: Duration) -> Option<Duration> {
    (!duration.is_zero()).then_some(duration)
}

impl ServeArgs {
    /// The server configuration these flags ask for, with TLS material
    /// loaded. Refuses to fall back to plain text silently.
    pub fn server_config(&self) -> Result<Config, ServeError> {
        let security = match (&self.tls_certs_dir, self.insecure) {
            (_, true) => Security::Insecure,
            (Some(dir), false) => Security::mutual_tls(dir)?,
            (None, false) => {
                return Err(ServeError::NoTls);
            }
        };
        let count = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
        Ok(Config {
            security,
            max_recv_message_bytes: usize::from(self.max_recv_message_size) * MIB,
            limits: ServerLimits {
                max_concurrent_calls: count(self.max_concurrent_calls),
                max_concurrent_reads: count(self.max_concurrent_reads),
                read_slot_hold: ServerLimits::DEFAULT_READ_SLOT_HOLD,
                max_streams_per_connection: self.max_streams_per_connection,
                max_connections: count(self.max_connections),
                http2_keepalive_interval: enabled(self.http2_keepalive_interval),
                http2_keepalive_timeout: self.http2_keepalive_timeout,
                tcp_keepalive: enabled(self.tcp_keepalive),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> std::result::Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("function-ecr-packages").chain(args.iter().copied()))
    }

    #[test]
    fn no_subcommand_serves_with_crossplane_defaults() {
        let Command::Serve(args) = parse(&["--insecure"]).expect("parses").into_command() else {
            panic!("expected the serve command")
        };
        assert_eq!(args.address, "0.0.0.0:9443".parse().expect("address"));
        assert_eq!(
            args.metrics_address,
            "0.0.0.0:8080".parse().expect("address")
        );
        assert_eq!(args.max_recv_message_size, 4);
        let config = args.server_config().expect("insecure needs no files");
        assert_eq!(config.max_recv_message_bytes, 4 * MIB);
        assert!(matches!(config.security, Security::Insecure));
        assert_eq!(config.limits, ServerLimits::default());
        assert_eq!(
            args.cache_options(),
            crate::registry::cache::CacheOptions::default()
        );
    }

    #[test]
    fn cache_budgets_come_from_flags() {
        let Command::Serve(args) = parse(&[
            "--insecure",
            "--cache-metadata-mib",
            "4",
            "--cache-tags-mib",
            "2",
            "--cache-manifests-mib",
            "1",
            "--cache-transient-backoff",
            "500ms",
            "--cache-negative-ttl",
            "1m",
        ])
        .expect("parses")
        .into_command() else {
            panic!("expected the serve command")
        };
        let cache = args.cache_options();
        assert_eq!(cache.meta_bytes, 4 * MIB as u64);
        assert_eq!(cache.tag_bytes, 2 * MIB as u64);
        assert_eq!(args.manifest_cache_bytes(), MIB as u64);
        assert_eq!(cache.transient_backoff, Duration::from_millis(500));
        assert_eq!(cache.negative_ttl, Duration::from_secs(60));
        assert!(parse(&["--cache-tags-mib", "0"]).is_err());
    }

    #[test]
    fn limits_come_from_flags() {
        let Command::Serve(args) = parse(&[
            "--insecure",
            "--max-concurrent-calls",
            "8",
            "--max-concurrent-reads",
            "3",
            "--max-streams-per-connection",
            "4",
            "--max-connections",
            "2",
            "--http2-keepalive-interval",
            "1m30s",
            "--http2-keepalive-timeout",
            "500ms",
            "--tcp-keepalive",
            "0",
        ])
        .expect("parses")
        .into_command() else {
            panic!("expected the serve command")
        };
        let limits = args.server_config().expect("config").limits;
        assert_eq!(
            limits,
            ServerLimits {
                max_concurrent_calls: 8,
                max_concurrent_reads: 3,
                read_slot_hold: ServerLimits::DEFAULT_READ_SLOT_HOLD,
                max_streams_per_connection: 4,
                max_connections: 2,
                http2_keepalive_interval: Some(Duration::from_secs(90)),
                http2_keepalive_timeout: Duration::from_millis(500),
                tcp_keepalive: None,
            }
        );
    }

    #[test]
    fn limits_refuse_zero_and_nonsense() {
        for args in [
            &["--max-concurrent-calls", "0"][..],
            &["--max-concurrent-reads", "0"],
            &["--max-streams-per-connection", "0"],
            &["--max-connections", "0"],
            &["--http2-keepalive-timeout", "0"],
            &["--http2-keepalive-interval", "10"],
            &["--tcp-keepalive", "1d"],
            &["--tcp-keepalive", "s"],
            &["--tcp-keepalive", ""],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn durations_read_like_go() {
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(duration("1h2m3s"), Ok(Duration::from_secs(3723)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(duration("-1s").is_err());
    }

    #[test]
    fn serve_subcommand_takes_the_same_flags() {
        let Command::Serve(args) = parse(&["serve", "--insecure", "--max-recv-message-size", "9"])
            .expect("parses")
            .into_command()
        else {
            panic!("expected the serve command")
        };
        assert!(args.insecure);
        assert_eq!(args.max_recv_message_size, 9);
    }

    #[test]
    fn insecure_wins_over_a_certificate_folder() {
        let Command::Serve(args) = parse(&["--insecure", "--tls-certs-dir", "/nonexistent"])
            .expect("parses")
            .into_command()
        else {
            panic!("expected the serve command")
        };
        let config = args.server_config().expect("certificates are not read");
        assert!(matches!(config.security, Security::Insecure));
    }

    #[test]
    fn neither_certificates_nor_insecure_is_refused() {
        let Command::Serve(args) = parse(&[]).expect("parses").into_command() else {
            panic!("expected the serve command")
        };
        // The environment of the test runner may set either; the flags
        // parsed above decide only when it does not.
        if args.insecure || args.tls_certs_dir.is_some() {
            return;
        }
        let error = args.server_config().expect_err("refused").to_string();
        assert!(error.contains("--tls-certs-dir"), "{error}");
        assert!(error.contains("--insecure"), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn message_size_must_be_positive() {
        assert!(parse(&["--max-recv-message-size", "0"]).is_err());
    }

    #[test]
    fn a_missing_certificate_folder_names_the_file() {
        let Command::Serve(args) = parse(&["--tls-certs-dir", "/nonexistent/certs"])
            .expect("parses")
            .into_command()
        else {
            panic!("expected the serve command")
        };
        let error = args.server_config().expect_err("no files").to_string();
        assert!(error.contains("/nonexistent/certs/tls.crt"), "{error}");
    }
}
