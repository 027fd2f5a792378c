use std::{io::IsTerminal, process::ExitCode, sync::Arc};

use clap::Parser;
use function_ecr_packages::{
    Error, Result, bootstrap,
    cli::{Cli, Command, ServeArgs},
    function::Function,
    mirror::MirrorArgs,
    registry::{connector::EcrConnector, ecr::EcrOptions},
    server, telemetry,
};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> ExitCode {
    let result = match Cli::parse().into_command() {
        Command::Serve(args) => serve(args).await,
        Command::Bootstrap(args) => bootstrap::run(&args).await,
        Command::Mirror(args) => return mirror(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One plain line, readable in `kubectl logs` of a crash-looping pod.
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn mirror(args: MirrorArgs) -> ExitCode {
    // Structured logs where no one watches a progress bar.
    if !std::io::stderr().is_terminal()
        && let Err(e) = telemetry::init_logging(false)
    {
        eprintln!("{e}");
    }
    match function_ecr_packages::mirror::run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mirror: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn serve(args: ServeArgs) -> Result<()> {
    let config = args.server_config()?;
    telemetry::init_logging(args.debug)?;
    let shutdown = server::shutdown_signal()?;

    let registry = prometheus::Registry::new();
    let metrics = telemetry::GrpcMetrics::register(&registry)?;
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
        Arc::new(Function::with_connector(Arc::new(connector))),
        metrics,
        grpc_listener,
        shutdown,
    )
    .await;
    metrics_server.abort();
    served
}

async fn bind(address: std::net::SocketAddr, what: &str) -> Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .map_err(|e| Error::Server(format!("binding the {what} address {address}: {e}")))
}
