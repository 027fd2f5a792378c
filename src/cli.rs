//! The command line, with the flags and environment variables Crossplane's
//! function runtime and its Go SDK use, so pod templates carry over.

use std::{net::SocketAddr, path::PathBuf};

use clap::{ArgAction, Args, Parser, Subcommand, builder::BoolishValueParser};

use crate::{
    Error, Result,
    server::{Config, Security},
};

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
}

impl ServeArgs {
    /// The server configuration these flags ask for, with TLS material
    /// loaded. Refuses to fall back to plain text silently.
    pub fn server_config(&self) -> Result<Config> {
        let security = match (&self.tls_certs_dir, self.insecure) {
            (_, true) => Security::Insecure,
            (Some(dir), false) => Security::mutual_tls(dir)?,
            (None, false) => {
                return Err(Error::Server(
                    "no TLS certificates: set --tls-certs-dir (or TLS_SERVER_CERTS_DIR) to a \
                     folder with tls.crt, tls.key and ca.crt, or pass --insecure"
                        .to_string(),
                ));
            }
        };
        Ok(Config {
            security,
            max_recv_message_bytes: usize::from(self.max_recv_message_size) * MIB,
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
