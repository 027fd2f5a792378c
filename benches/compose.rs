//! Benchmarks, run with `cargo bench --bench compose`: how long a warm
//! reconcile takes, how many registry calls it makes, and how fast a large
//! package layer streams. Numbers are printed, never asserted: the machines
//! are shared and noisy, and a test that fails on a slow day proves nothing.

use std::hint::black_box;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flate2::Compression as Level;
use flate2::write::GzEncoder;
use function_ecr_packages::function::Function;
use function_ecr_packages::oci::blob::{Compression, LayerLimits, extract, sha256_digest};
use function_ecr_packages::proto::v1::{Resource, RunFunctionRequest, State};
use function_ecr_packages::registry::connector::MemoryConnector;
use function_ecr_packages::registry::memory::blog_registry;
use function_ecr_packages::sdk::structs::json_to_struct;
use serde_json::json;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // A recorded request instead of the generated cases, when one is named.
    if let Ok(path) = std::env::var("COMPOSE_BENCH_REQUEST") {
        runtime.block_on(recorded(&path));
        return;
    }
    runtime.block_on(warm_reconcile());
    runtime.block_on(many_distinct_packages());
    large_layer();
}

/// The request of a first reconcile of `xr`: nothing composed yet.
fn first_call(xr: &serde_json::Value) -> RunFunctionRequest {
    RunFunctionRequest {
        observed: Some(State {
            composite: Some(Resource {
                resource: json_to_struct(xr),
                ..Default::default()
            }),
            resources: Default::default(),
        }),
        ..Default::default()
    }
}

/// Peak and current resident memory of this process, in KiB.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// 1,000 distinct packages resolved through the caches, 100 XRs of ten
/// packages each with a shared dependency: memory stays within the caches'
/// byte budgets.
async fn many_distinct_packages() {
    use function_ecr_packages::package::PackageKind;
    use function_ecr_packages::registry::memory::{MemoryRegistry, meta};
    let registry = Arc::new(MemoryRegistry::new());
    registry.push("bench/family", "v1.0.0", meta(PackageKind::Provider, &[]));
    for i in 0..1000 {
        registry.push(
            &format!("bench/provider-{i}"),
            "v1.0.0",
            meta(
                PackageKind::Provider,
                &[(
                    "xpkg.upbound.io/bench/family",
                    PackageKind::Provider,
                    ">=v1.0.0",
                )],
            ),
        );
    }
    let function = Function::with_connector(Arc::new(MemoryConnector::new(registry.clone())));
    let (_, before) = rss();
    let started = Instant::now();
    for x in 0..100 {
        let packages: Vec<_> = (0..10)
            .map(|p| json!({"kind": "Provider", "repository": format!("bench/provider-{}", x * 10 + p), "version": ">=v1.0.0"}))
            .collect();
        let xr = json!({"apiVersion": "platform.example.org/v1alpha1", "kind": "XEcrPackages",
            "metadata": {"name": format!("bench-{x}")},
            "spec": {"registry": {"accountId": "123456789012", "region": "eu-west-2"}, "packages": packages}});
        black_box(function.compose(first_call(&xr)).await);
    }
    let (peak, after) = rss();
    println!(
        "1,000 distinct packages over 100 XRs, cold: {:?}, {} registry calls; RSS {before} KiB before, {after} KiB after, {peak} KiB peak",
        started.elapsed(),
        registry.calls()
    );
}

/// A reconcile of the blog XR (3 packages) once the cache is warm.
async fn warm_reconcile() {
    let registry = Arc::new(blog_registry());
    let function = Function::with_connector(Arc::new(MemoryConnector::new(registry.clone())));
    let xr = json!({"apiVersion": "platform.example.org/v1alpha1", "kind": "XEcrPackages", "metadata": {"name": "bench"},
        "spec": {"registry": {"accountId": "123456789012", "region": "eu-west-2"}, "packages": [
            {"kind": "Provider", "repository": "upbound/provider-aws-s3", "version": ">=v2.0.0"},
            {"kind": "Function", "repository": "crossplane-contrib/function-patch-and-transform", "version": "v0.8.2"}]}});
    let request = first_call(&xr);
    let cold = Instant::now();
    black_box(function.compose(request.clone()).await);
    let cold = cold.elapsed();
    let cold_calls = registry.calls();

    let iterations = 2_000;
    let started = Instant::now();
    for _ in 0..iterations {
        black_box(function.compose(request.clone()).await);
    }
    let per_call = started.elapsed() / iterations;
    println!("compose, blog XR, cold: {cold:?}, {cold_calls} registry calls");
    println!(
        "compose, blog XR, warm: {per_call:?} per call over {iterations} calls, {} registry calls",
        registry.calls() - cold_calls
    );
}

/// Streams a provider-sized layer: the meta document, then 32 MiB of CRDs.
fn large_layer() {
    let mut package = String::from(
        "apiVersion: meta.pkg.crossplane.io/v1\nkind: Provider\nmetadata:\n  name: big\n",
    );
    let crd = "---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: things.example.org\nspec:\n  group: example.org\n";
    while package.len() < 32 << 20 {
        package.push_str(crd);
    }
    let mut tar = ustar_header("package.yaml", package.len());
    tar.extend_from_slice(package.as_bytes());
    tar.resize(tar.len().div_ceil(512) * 512 + 1024, 0);
    let mut gz = GzEncoder::new(Vec::new(), Level::fast());
    gz.write_all(&tar).expect("gzip");
    let blob = gz.finish().expect("gzip");
    let digest = sha256_digest(&blob);

    let rounds = 5;
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        let started = Instant::now();
        let meta = extract(&blob, &digest, Compression::Gzip, LayerLimits::default())
            .expect("valid layer");
        best = best.min(started.elapsed());
        assert!(meta.is_some());
    }
    let mib = blob.len() as f64 / f64::from(1 << 20);
    println!(
        "layer with {} MiB of package.yaml ({mib:.1} MiB compressed): best of {rounds} {best:?}, {:.0} MiB/s compressed (parsing stops after the meta document; the rest is only hashed)",
        package.len() >> 20,
        mib / best.as_secs_f64()
    );
}

fn ustar_header(name: &str, size: usize) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    h
}

/// One recorded request (an encoded RunFunctionRequest, such as the
/// `ours.bin` that `scripts/bench --keep` leaves) composed again and again
/// with the memo off, against the registry the environment names: decode,
/// compose and encode, per call. In one process and without gRPC, so two
/// builds compare more steadily than through a server on a noisy machine.
/// `COMPOSE_BENCH_CALLS` sets how many calls are timed (60), e.g. more for a
/// profiler to sample.
async fn recorded(path: &str) {
    use prost::Message;
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => return println!("COMPOSE_BENCH_REQUEST={path}: {e}"),
    };
    let function = Function::new().with_memo(0);
    let once = || async {
        match RunFunctionRequest::decode(bytes.as_slice()) {
            Ok(request) => Some(function.compose(request).await.encode_to_vec()),
            Err(_) => None,
        }
    };
    let Some(first) = once().await else {
        return println!("COMPOSE_BENCH_REQUEST={path}: not a RunFunctionRequest");
    };
    // The same digest before and after a change shows the change left the
    // response as it was, byte for byte.
    println!(
        "recorded request {path}: response {}",
        sha256_digest(&first)
    );
    let calls = std::env::var("COMPOSE_BENCH_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(60);
    let mut times: Vec<Duration> = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        black_box(once().await);
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "recorded request {path}, memo off, {calls} calls: fastest {:?}, quartile {:?}, median {:?}",
        times[0],
        times[calls / 4],
        times[calls / 2]
    );
}
