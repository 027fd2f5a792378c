//! The no-op floor for `scripts/bench`: a tonic server on the crate's own
//! generated protocol (`function_ecr_packages::proto::v1`) that answers every
//! RunFunction with the request's observed composed resources as desired and
//! the request's meta tag echoed, and does nothing else. What it costs is the
//! cost of decoding a request and encoding a response of that size over
//! tonic, which no composition function on this stack can go below.
//!
//! ```sh
//! cargo run --release --example noop -- --address 127.0.0.1:9445
//! ```
//!
//! It prints `serving RunFunction at ADDRESS` on stdout once it listens.

use std::net::SocketAddr;

use function_ecr_packages::proto::v1::{
    Resource, ResponseMeta, RunFunctionRequest, RunFunctionResponse, State,
    function_runner_service_server::{FunctionRunnerService, FunctionRunnerServiceServer},
};
use tonic::{Request, Response, Status};

/// As large as the function itself accepts, so the same requests get in.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

struct Noop;

#[tonic::async_trait]
impl FunctionRunnerService for Noop {
    async fn run_function(
        &self,
        request: Request<RunFunctionRequest>,
    ) -> Result<Response<RunFunctionResponse>, Status> {
        let request = request.into_inner();
        let resources = request
            .observed
            .map(|observed| observed.resources)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, observed)| {
                let desired = Resource {
                    resource: observed.resource,
                    ..Default::default()
                };
                (name, desired)
            })
            .collect();
        Ok(Response::new(RunFunctionResponse {
            meta: Some(ResponseMeta {
                tag: request.meta.map(|meta| meta.tag).unwrap_or_default(),
                ttl: Some(prost_types::Duration {
                    seconds: 60,
                    nanos: 0,
                }),
            }),
            desired: Some(State {
                composite: None,
                resources,
            }),
            ..Default::default()
        }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut address = String::from("127.0.0.1:0");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--address" => address = args.next().ok_or("--address wants HOST:PORT")?,
            "-h" | "--help" => {
                println!("usage: noop [--address HOST:PORT]");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let address: SocketAddr = address.parse()?;
    let listener = tokio::net::TcpListener::bind(address).await?;
    let local = listener.local_addr()?;
    println!("serving RunFunction at {local}");
    let service = FunctionRunnerServiceServer::new(Noop)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
        )
        .await?;
    Ok(())
}
