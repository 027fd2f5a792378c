#![forbid(unsafe_code)]

use std::{io::IsTerminal, process::ExitCode, sync::Arc};

use clap::Parser;
use function_ecr_packages::{
    bootstrap,
    cli::{Cli, Command, ServeArgs},
    error::error_chain,
    function::Function,
    mirror::MirrorArgs,
    registry::{connector::EcrConnector, ecr::EcrOptions},
    server::{self, ServeError},
    telemetry,
};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().into_command() {
        Command::Serve(args) => exit(serve(args).await),
        Command::Bootstrap(args) => exit(bootstrap::run(&args).await),
        Command::Mirror(args) => mirror(args).await,
    }
}

/// One plain line with every cause, readable in `kubectl logs` of a
/// crash-looping pod.
fn exit<E: std::error::Error + 'static>(result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

async fn mirror(args: MirrorArgs) -> ExitCode {
    // Structured logs where no one watches a progress bar.
    if !std::io::stderr().is_terminal()
        && let Err(e) = telemetry::init_logging(false)
    {
        eprintln!("{}", error_chain(&e));
    }
    match function_ecr_packages::mirror::run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mirror: {}", error_chain(&e));
            ExitCode::from(e.exit_code())
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), ServeError> {
    let config = args.server_config()?;
    telemetry::init_logging(args.debug)?;
    let shutdown = server::shutdown_signal()?;

    let registry = prometheus::Registry::new();
    let metrics = server::GrpcMetrics::register(&registry)?;
    let ecr = EcrOptions {
        calls_metric: Some(telemetry::registry_calls(&registry)?),
        manifest_cache_bytes: args.manifest_cache_bytes(),
        ..EcrOptions::from_env()
    };
    let connector = EcrConnector::with_options(ecr, args.cache_options());
    let metrics_listener = bind(args.metrics_address, "metrics").await?;
    let grpc_listener = bind(args.address, "gRPC").await?;

    let metrics_server = tokio::spawn(telemetry::serve_metrics(registry, metrics_listener));
    let served = server::serve(
        config,
        Arc::new(Function::with_connector(Arc::new(connector)).with_memo(args.memo_bytes())),
        metrics,
        grpc_listener,
        shutdown,
    )
    .await;
    metrics_server.abort();
    served
}

async fn bind(
    address: std::net::SocketAddr,
    what: &'static str,
) -> Result<TcpListener, ServeError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| ServeError::Bind {
            what,
            address,
            source,
        })
}
