//! The ECR registry client against real servers: the local ECR stand-in
//! (moto for the ECR API, docker-registry for blobs) that `scripts/test`
//! starts, and small loopback HTTP servers started here for what the
//! stand-in cannot do (throttling, pagination, slowness, S3 redirects).

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use function_ecr_packages::Error;
use function_ecr_packages::aws::RegistryRef;
use function_ecr_packages::oci::blob::LayerLimits;
use function_ecr_packages::package::{Dependency, PackageKind};
use function_ecr_packages::registry::cache::{CacheOptions, CachedRegistry};
use function_ecr_packages::registry::connector::EcrConnector;
use function_ecr_packages::registry::credentials::AwsCredentials;
use function_ecr_packages::registry::ecr::{CallCounts, EcrOptions, EcrRegistry};
use function_ecr_packages::registry::{Connector, Registry};
use serde_json::{Value, json};
use support::localecr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The local ECR, started before `main` unless the environment names one.
#[ctor::ctor(unsafe)]
fn start_local_ecr() {
    // SAFETY: before main, while the process has one thread.
    unsafe { localecr::start_unless_running() }
}

fn registry_ref() -> RegistryRef {
    let env = localecr::env();
    RegistryRef::new(localecr::ACCOUNT_ID, env.region)
}

/// Options from the environment, with quick retries so failure tests end fast.
fn options() -> EcrOptions {
    EcrOptions {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        ..EcrOptions::from_env()
    }
}

async fn ecr_with(options: EcrOptions) -> EcrRegistry {
    EcrRegistry::with_options(registry_ref(), None, options)
        .await
        .expect("ECR client")
}

async fn ecr() -> EcrRegistry {
    ecr_with(options()).await
}

fn provider(name: &str) -> Value {
    json!({
        "apiVersion": "meta.pkg.crossplane.io/v1",
        "kind": "Provider",
        "metadata": {"name": name},
        "spec": {"controller": {"image": "example/controller:v1"}}
    })
}

fn configuration(name: &str) -> Value {
    json!({
        "apiVersion": "meta.pkg.crossplane.io/v1",
        "kind": "Configuration",
        "metadata": {"name": name},
        "spec": {"dependsOn": [
            {"apiVersion": "pkg.crossplane.io/v1", "kind": "Provider",
             "package": "xpkg.upbound.io/upbound/provider-aws-s3", "version": ">=v1.0.0"},
            {"function": "xpkg.upbound.io/crossplane-contrib/function-patch-and-transform",
             "version": "v0.8.0"}
        ]}
    })
}

fn expected_deps() -> Vec<Dependency> {
    vec![
        Dependency {
            package: "xpkg.upbound.io/upbound/provider-aws-s3".into(),
            kind: PackageKind::Provider,
            version: ">=v1.0.0".into(),
        },
        Dependency {
            package: "xpkg.upbound.io/crossplane-contrib/function-patch-and-transform".into(),
            kind: PackageKind::Function,
            version: "v0.8.0".into(),
        },
    ]
}

/// One call of each kind and no redirect: a cold lookup of one package
/// (tags, manifest, token, layer).
const ONE_OF_EACH: CallCounts = CallCounts {
    list_images: 1,
    batch_get_image: 1,
    get_authorization_token: 1,
    blob_get: 1,
    blob_redirect: 0,
    describe_image_scan_findings: 0,
    list_referrers: 0,
};

/// Awaits `call`, failing if it has not answered within a minute: a hang
/// guard for the timeout tests (the servers they talk to never answer, so a
/// broken timeout hangs), not a measure of speed; machines here are shared.
async fn answered<T>(call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), call)
        .await
        .expect("no answer within a minute: a timeout is not enforced")
}

/// Seeds one image and returns tag -> digest.
fn seed(image: Value) -> HashMap<String, String> {
    let repo = image["repository"].as_str().unwrap().to_string();
    let out = localecr::env().seed(&json!({ "images": [image] }));
    out[&repo]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

#[tokio::test]
async fn lists_tags_resolves_and_reads_a_package() {
    let repo = localecr::unique("ecr/configuration-platform");
    let digests = seed(json!({
        "repository": repo, "tags": ["v1.0.0", "v1.1.0", "latest"],
        "package": configuration("platform"),
    }));
    let ecr = ecr().await;

    let listed = ecr.list_tags(&repo).await.unwrap();
    assert_eq!(listed.as_slice(), ["latest", "v1.0.0", "v1.1.0"]);

    let digest = ecr.resolve_digest(&repo, "v1.1.0").await.unwrap();
    assert_eq!(digest, digests["v1.1.0"]);
    assert_eq!(
        listed.digest_of("v1.1.0"),
        Some(digest.as_str()),
        "ListImages lists each tag's digest, the one BatchGetImage answers"
    );
    assert_eq!(ecr.resolve_digest(&repo, &digest).await.unwrap(), digest);

    // A reference off the grammar (a traversal, a tag posing as a digest,
    // a digest of the wrong length) is refused before any call, by name.
    for bad in [
        "../other/manifests/v9",
        "sha256:v9.9.9",
        "sha256:abc",
        "v1?x",
    ] {
        match ecr.resolve_digest(&repo, bad).await {
            Err(function_ecr_packages::error::Error::InvalidPackage { message, .. }) => {
                assert!(
                    message.contains("the reference asked for"),
                    "{bad}: {message}"
                )
            }
            other => panic!("{bad}: {other:?}"),
        }
    }

    let meta = ecr.package_meta(&repo, &digest).await.unwrap();
    assert_eq!(meta.kind, Some(PackageKind::Configuration));
    assert_eq!(meta.name, "platform");
    assert_eq!(meta.depends_on, expected_deps());

    // The manifest read while resolving is reused: no second BatchGetImage
    // for the same digest (by tag, then by digest, then for the package).
    let calls = ecr.calls();
    assert_eq!(calls, ONE_OF_EACH);

    // Static credentials from a Crossplane credentials entry work too.
    let env = localecr::env();
    let creds = AwsCredentials::new(env.access_key_id, env.secret_access_key, None);
    let with_creds = EcrRegistry::with_options(registry_ref(), Some(&creds), options())
        .await
        .unwrap();
    assert_eq!(
        with_creds.resolve_digest(&repo, "v1.0.0").await.unwrap(),
        digests["v1.0.0"]
    );
}

#[tokio::test]
async fn follows_an_index_to_its_linux_amd64_manifest() {
    let repo = localecr::unique("ecr/provider-index");
    let digests = seed(json!({
        "repository": repo, "tags": ["v2.0.0"], "layout": "index",
        "platforms": ["linux/arm64", "linux/amd64"],
        "package": provider("provider-index"),
    }));
    let ecr = ecr().await;
    let digest = ecr.resolve_digest(&repo, "v2.0.0").await.unwrap();
    assert_eq!(digest, digests["v2.0.0"]);
    let meta = ecr.package_meta(&repo, &digest).await.unwrap();
    assert_eq!(meta.kind, Some(PackageKind::Provider));
    assert_eq!(meta.name, "provider-index");
    // The index, then its child by digest.
    assert_eq!(ecr.calls().batch_get_image, 2);
    assert_eq!(ecr.calls().blob_get, 1);
}

#[tokio::test]
async fn missing_repository_and_tag_are_clear() {
    let ecr = ecr().await;
    let missing = localecr::unique("ecr/nothing-here");
    match ecr.list_tags(&missing).await {
        Err(Error::RepositoryNotFound { repository, .. }) => assert_eq!(repository, missing),
        other => panic!("expected RepositoryNotFound, got {other:?}"),
    }
    match ecr.resolve_digest(&missing, "v1.0.0").await {
        Err(Error::RepositoryNotFound { .. }) => {}
        other => panic!("expected RepositoryNotFound, got {other:?}"),
    }

    let repo = localecr::unique("ecr/provider-tags");
    seed(json!({"repository": repo, "tags": ["v1.0.0"], "package": provider("p")}));
    let e = ecr.resolve_digest(&repo, "v9.9.9").await.unwrap_err();
    match &e {
        Error::ImageNotFound {
            repository,
            reference,
            message,
            ..
        } => {
            assert_eq!(repository, &repo);
            assert_eq!(reference, "v9.9.9");
            assert!(message.contains("ImageNotFound"), "{message}");
        }
        other => panic!("expected ImageNotFound, got {other:?}"),
    }
    assert!(!e.is_transient());
    let unknown = format!("sha256:{}", "0".repeat(64));
    assert!(matches!(
        ecr.package_meta(&repo, &unknown).await,
        Err(Error::ImageNotFound { .. })
    ));
}

#[tokio::test]
async fn unannotated_images_are_searched_for_package_yaml() {
    let repo = localecr::unique("ecr/provider-unannotated");
    let digests = seed(json!({
        "repository": repo, "tags": ["v1.0.0"], "layout": "unannotated",
        "runtimeLayers": 2, "package": configuration("unannotated"),
    }));
    let ecr = ecr().await;
    let meta = ecr.package_meta(&repo, &digests["v1.0.0"]).await.unwrap();
    assert_eq!(meta.name, "unannotated");
    assert_eq!(meta.depends_on, expected_deps());
    // The top layer holds package.yaml: one blob read.
    assert_eq!(ecr.calls().blob_get, 1);
}

#[tokio::test]
async fn oversized_and_corrupt_layers_are_invalid_packages() {
    let repo = localecr::unique("ecr/provider-bad");
    let oversized = seed(json!({
        "repository": repo, "tags": ["oversized"],
        "package": provider("huge"), "oversized": 4 * 1024 * 1024,
    }));
    let corrupt = seed(json!({
        "repository": repo, "tags": ["corrupt"],
        "package": provider("corrupt"), "corrupt": true,
    }));
    let ecr = ecr().await;

    // The padding is part of the meta document: refused at its bound.
    let e = ecr
        .package_meta(&repo, &oversized["oversized"])
        .await
        .unwrap_err();
    match &e {
        Error::InvalidPackage { message, .. } => {
            assert!(message.contains("larger than 1048576 bytes"), "{message}")
        }
        other => panic!("expected InvalidPackage, got {other:?}"),
    }
    assert!(!e.is_transient());

    // A compressed-size bound refuses the layer from its descriptor, before
    // any blob is fetched.
    let small = ecr_with(EcrOptions {
        limits: LayerLimits {
            max_compressed_bytes: 1024,
            ..LayerLimits::default()
        },
        ..options()
    })
    .await;
    let e = small
        .package_meta(&repo, &oversized["oversized"])
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidPackage { message, .. } if message.contains("more than the 1024 bytes allowed")),
        "{e:?}"
    );
    assert_eq!(small.calls().blob_get, 0);

    let e = ecr
        .package_meta(&repo, &corrupt["corrupt"])
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidPackage { message, .. } if message.contains("not valid gzip")),
        "{e:?}"
    );
}

#[tokio::test]
async fn large_layers_are_read_with_bounded_memory() {
    let repo = localecr::unique("ecr/provider-large");
    let digests = seed(json!({
        "repository": repo, "tags": ["v1.0.0"],
        "package": configuration("large"), "extraYamlBytes": 8 * 1024 * 1024,
    }));
    // Tight bounds: the meta document must fit in 64 KiB, and no more than
    // 256 KiB of the (over 8 MiB) package.yaml may be decompressed. Passing
    // proves the CRDs after the meta document are never decompressed nor held.
    let ecr = ecr_with(EcrOptions {
        limits: LayerLimits {
            max_uncompressed_bytes: 256 * 1024,
            max_meta_document_bytes: 64 * 1024,
            ..LayerLimits::default()
        },
        ..options()
    })
    .await;
    let started = Instant::now();
    let meta = ecr.package_meta(&repo, &digests["v1.0.0"]).await.unwrap();
    assert_eq!(meta.name, "large");
    assert_eq!(meta.depends_on, expected_deps());
    eprintln!("large layer read in {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------
// Failure modes, with loopback servers started here.

/// A request as a test server saw it.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    headers: HashMap<String, String>,
    body: String,
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Wait this long before answering.
    delay: Duration,
}

impl Reply {
    fn json(status: u16, body: Value) -> Self {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/x-amz-json-1.1".into())],
            body: body.to_string().into_bytes(),
            delay: Duration::ZERO,
        }
    }
}

type Handler = Arc<dyn Fn(usize, &Seen) -> Reply + Send + Sync>;

/// A tiny HTTP/1.1 server on a loopback port; `handler` gets the request
/// number (from 0) and the request. Returns its base URL and what it saw.
async fn serve(handler: Handler) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let count = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            let log = log.clone();
            let count = count.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i;
                    }
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let mut lines = head.split("\r\n");
                let path = lines
                    .next()
                    .and_then(|l| l.split_whitespace().nth(1))
                    .unwrap_or("")
                    .to_string();
                let headers: HashMap<String, String> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect();
                let len: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut body = buf[head_end + 4..].to_vec();
                while body.len() < len {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => body.extend_from_slice(&chunk[..n]),
                    }
                }
                let req = Seen {
                    path,
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                };
                let n = count.fetch_add(1, Ordering::SeqCst);
                log.lock().unwrap().push(req.clone());
                let reply = handler(n, &req);
                tokio::time::sleep(reply.delay).await;
                let mut out = format!(
                    "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\nx-amzn-requestid: test-{n}\r\n",
                    reply.status,
                    reply.body.len()
                );
                for (k, v) in &reply.headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                let _ = sock.write_all(out.as_bytes()).await;
                let _ = sock.write_all(&reply.body).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (base, seen)
}

fn throttled() -> Reply {
    Reply::json(
        400,
        json!({"__type": "ThrottlingException", "message": "Rate exceeded"}),
    )
}

#[tokio::test]
async fn throttling_is_retried_with_backoff_then_reported_unavailable() {
    // Twice throttled, then an answer: one ListImages call, three attempts.
    let handler: Handler = Arc::new(|n, _| {
        if n < 2 {
            throttled()
        } else {
            Reply::json(
                200,
                json!({"imageIds": [{"imageTag": "v1.0.0", "imageDigest": format!("sha256:{}", "a".repeat(64))}]}),
            )
        }
    });
    let (url, seen) = serve(handler).await;
    let ecr = ecr_with(EcrOptions {
        api_endpoint: Some(url),
        ..options()
    })
    .await;
    assert_eq!(
        ecr.list_tags("some/repo").await.unwrap().as_slice(),
        ["v1.0.0"]
    );
    assert_eq!(seen.lock().unwrap().len(), 3);
    assert_eq!(ecr.calls().list_images, 1);
    let first = seen.lock().unwrap()[0].clone();
    assert!(
        first.headers["x-amz-target"].ends_with("ListImages"),
        "{first:?}"
    );
    assert!(
        first.body.contains("\"registryId\":\"123456789012\""),
        "{}",
        first.body
    );
    assert!(first.body.contains("TAGGED"), "{}", first.body);

    // Always throttled: max_attempts attempts, then Unavailable (transient).
    let (url, seen) = serve(Arc::new(|_, _| throttled())).await;
    let ecr = ecr_with(EcrOptions {
        api_endpoint: Some(url),
        max_attempts: 3,
        ..options()
    })
    .await;
    let e = ecr.list_tags("some/repo").await.unwrap_err();
    assert!(
        matches!(&e, Error::Unavailable { operation, message } if operation == "ListImages" && message.contains("ThrottlingException")),
        "{e:?}"
    );
    assert!(e.is_transient());
    assert_eq!(seen.lock().unwrap().len(), 3);
}

/// A registry that says no to this identity, or whose host does not
/// exist, is not an outage: an XR could name such a registry on purpose.
/// Expired or unusable credentials are the function's own and stay
/// transient.
#[tokio::test]
async fn denials_and_unknown_hosts_are_not_outages() {
    let denied = |code: &str| {
        let code = code.to_string();
        let handler: Handler = Arc::new(move |_, _| {
            Reply::json(400, json!({"__type": code, "message": "not authorized"}))
        });
        handler
    };
    let (url, seen) = serve(denied("AccessDeniedException")).await;
    let ecr = ecr_with(EcrOptions {
        api_endpoint: Some(url),
        ..options()
    })
    .await;
    let e = ecr.list_tags("some/repo").await.unwrap_err();
    assert!(
        matches!(&e, Error::AccessDenied { operation, message, .. } if operation == "ListImages" && message.contains("AccessDeniedException")),
        "{e:?}"
    );
    assert!(!e.is_transient());
    assert_eq!(seen.lock().unwrap().len(), 1, "not retried");

    let (url, _) = serve(denied("ExpiredTokenException")).await;
    let ecr = ecr_with(EcrOptions {
        api_endpoint: Some(url),
        ..options()
    })
    .await;
    let e = ecr.list_tags("some/repo").await.unwrap_err();
    assert!(matches!(&e, Error::Credentials(_)), "{e:?}");
    assert!(e.is_transient());

    // A pull-through cache whose upstream refuses.
    let handler: Handler = Arc::new(|_, _| {
        Reply::json(
            200,
            json!({"images": [], "failures": [{"imageId": {"imageTag": "v1.0.0"}, "failureCode": "UpstreamAccessDenied", "failureReason": "denied upstream"}]}),
        )
    });
    let (url, _) = serve(handler).await;
    let ecr = ecr_with(EcrOptions {
        api_endpoint: Some(url),
        ..options()
    })
    .await;
    let e = ecr
        .resolve_digest("cache/repo", "v1.0.0")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::AccessDenied { operation, .. } if operation == "BatchGetImage"),
        "{e:?}"
    );
    assert!(!e.is_transient());

    // `.invalid` never resolves (RFC 6761), where the resolver answers.
    let lookup = std::net::ToSocketAddrs::to_socket_addrs(&("ecr-api.invalid", 443));
    if !lookup
        .err()
        .is_some_and(|e| function_ecr_packages::error::is_unknown_host(&e))
    {
        eprintln!("skipping the unknown host case: this machine's resolver gives no answer");
        return;
    }
    let ecr = ecr_with(EcrOptions {
        api_endpoint: Some("http://ecr-api.invalid".to_string()),
        ..options()
    })
    .await;
    let e = answered(ecr.list_tags("any/repo")).await.unwrap_err();
    assert!(
        matches!(&e, Error::UnknownHost { operation, .. } if operation == "ListImages"),
        "{e:?}"
    );
    assert!(!e.is_transient());
}

#[tokio::test]
async fn list_tags_reads_every_page() {
    // moto does not paginate ListImages; this server does, three pages.
    let handler: Handler = Arc::new(|_, req| {
        let body: Value = serde_json::from_str(&req.body).unwrap();
        let (tags, next) = match body.get("nextToken").and_then(Value::as_str) {
            None => (vec!["v1.0.0", "v1.1.0"], Some("page-2")),
            Some("page-2") => (vec!["v1.2.0"], Some("page-3")),
            Some("page-3") => (vec!["v2.0.0", "v1.0.0"], None),
            Some(other) => panic!("unexpected token {other}"),
        };
        let ids: Vec<Value> = tags
            .iter()
            .map(|t| json!({"imageTag": t, "imageDigest": format!("sha256:{}", "b".repeat(64))}))
            .collect();
        let mut out = json!({ "imageIds": ids });
        if let Some(n) = next {
            out["nextToken"] = json!(n);
        }
        Reply::json(200, out)
    });
    let (url, seen) = serve(handler).await;
    let ecr = ecr_with(EcrOptions {
        api_endpoint: Some(url),
        ..options()
    })
    .await;
    let tags = ecr.list_tags("paged/repo").await.unwrap();
    assert_eq!(tags.as_slice(), ["v1.0.0", "v1.1.0", "v1.2.0", "v2.0.0"]);
    assert_eq!(ecr.calls().list_images, 3);
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn unreachable_api_and_registry_are_unavailable() {
    let ecr = ecr_with(EcrOptions {
        api_endpoint: Some(localecr::closed_port()),
        ..options()
    })
    .await;
    let e = answered(ecr.list_tags("any/repo")).await.unwrap_err();
    assert!(
        matches!(&e, Error::Unavailable { operation, .. } if operation == "ListImages"),
        "{e:?}"
    );
    // The cause, read from the error's source chain, without the SDK's Debug
    // dump of it: this message reaches the XR's events.
    let message = e.to_string();
    assert!(message.contains("Connection refused"), "{message}");
    assert!(!message.contains("DispatchFailure"), "{message}");
    assert!(e.is_transient());

    // API up, registry data plane down.
    let repo = localecr::unique("ecr/provider-noregistry");
    let digests = seed(json!({"repository": repo, "tags": ["v1.0.0"], "package": provider("p")}));
    let ecr = ecr_with(EcrOptions {
        registry_endpoint: Some(localecr::closed_port()),
        ..options()
    })
    .await;
    let e = answered(ecr.package_meta(&repo, &digests["v1.0.0"]))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Unavailable { operation, .. } if operation == "GetBlob"),
        "{e:?}"
    );
    // Connection failures are retried a bounded number of times.
    assert_eq!(ecr.calls().blob_get, 3);
}

#[tokio::test]
async fn slow_servers_time_out() {
    let hang: Handler = Arc::new(|_, _| Reply {
        delay: Duration::from_secs(3600),
        ..Reply::json(200, json!({}))
    });
    let (url, seen) = serve(hang.clone()).await;
    let ecr = ecr_with(EcrOptions {
        api_endpoint: Some(url),
        attempt_timeout: Duration::from_millis(300),
        operation_timeout: Duration::from_secs(2),
        max_attempts: 2,
        ..options()
    })
    .await;
    let e = answered(ecr.list_tags("slow/repo")).await.unwrap_err();
    assert!(
        matches!(&e, Error::Unavailable { message, .. } if message.contains("timed out")),
        "{e:?}"
    );
    assert_eq!(seen.lock().unwrap().len(), 2, "each attempt timed out");

    let repo = localecr::unique("ecr/provider-slowblob");
    let digests = seed(json!({"repository": repo, "tags": ["v1.0.0"], "package": provider("p")}));
    let (url, _) = serve(hang).await;
    let ecr = ecr_with(EcrOptions {
        registry_endpoint: Some(url),
        blob_timeout: Duration::from_millis(500),
        ..options()
    })
    .await;
    let e = answered(ecr.package_meta(&repo, &digests["v1.0.0"]))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Unavailable { operation, message } if operation == "GetBlob" && message.contains("took more than")),
        "{e:?}"
    );
}

#[tokio::test]
async fn s3_redirects_are_followed_without_the_token() {
    let env = localecr::env();
    let repo = localecr::unique("ecr/provider-redirect");
    let digests =
        seed(json!({"repository": repo, "tags": ["v1.0.0"], "package": provider("redirected")}));
    // The base layer's bytes, straight from the registry.
    let manifest = env
        .registry_get(
            &format!("/v2/{repo}/manifests/v1.0.0"),
            Some(localecr::ACCEPT_MANIFESTS),
        )
        .await;
    let manifest: Value = serde_json::from_slice(&manifest.body).unwrap();
    let layer = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["annotations"]["io.crossplane.xpkg"] == "base")
        .unwrap();
    let layer_digest = layer["digest"].as_str().unwrap().to_string();
    let blob = env
        .registry_get(&format!("/v2/{repo}/blobs/{layer_digest}"), None)
        .await
        .body;

    let blob = Arc::new(blob);
    let handler: Handler = {
        let blob = blob.clone();
        Arc::new(move |_, req| {
            if req.path.contains("/blobs/") {
                Reply {
                    status: 307,
                    headers: vec![(
                        "location".into(),
                        "/s3-bucket/layer?X-Amz-Signature=secret".into(),
                    )],
                    body: Vec::new(),
                    delay: Duration::ZERO,
                }
            } else {
                Reply {
                    status: 200,
                    headers: vec![("content-type".into(), "application/octet-stream".into())],
                    body: blob.as_ref().clone(),
                    delay: Duration::ZERO,
                }
            }
        })
    };
    let (url, seen) = serve(handler).await;
    let ecr = ecr_with(EcrOptions {
        registry_endpoint: Some(url),
        ..options()
    })
    .await;
    let meta = ecr.package_meta(&repo, &digests["v1.0.0"]).await.unwrap();
    assert_eq!(meta.name, "redirected");

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].path, format!("/v2/{repo}/blobs/{layer_digest}"));
    let auth = seen[0]
        .headers
        .get("authorization")
        .expect("token sent to the registry");
    assert!(auth.starts_with("Basic "), "{auth}");
    assert!(
        seen[1].path.starts_with("/s3-bucket/layer"),
        "{:?}",
        seen[1]
    );
    assert!(
        !seen[1].headers.contains_key("authorization"),
        "the redirected request carried the token: {:?}",
        seen[1]
    );
    assert_eq!(ecr.calls().blob_get, 1);
    assert_eq!(ecr.calls().blob_redirect, 1);
}

#[tokio::test]
async fn presigned_urls_never_reach_error_messages() {
    let repo = localecr::unique("ecr/provider-presigned");
    let digests =
        seed(json!({"repository": repo, "tags": ["v1.0.0"], "package": provider("presigned")}));
    let closed = localecr::closed_port();
    let presigned = "/s3-bucket/layer?X-Amz-Signature=secret&X-Amz-Credential=AKIDSECRET";
    // S3's own error body echoes the credential and the string it signed.
    let echo =
        b"<Error><Code>SignatureDoesNotMatch</Code><AWSAccessKeyId>AKIDSECRET</AWSAccessKeyId>\
<StringToSign>X-Amz-Credential=AKIDSECRET&amp;X-Amz-Signature=secret</StringToSign></Error>";
    // (where the registry redirects, what S3 answers, S3's Location)
    let cases: Vec<(String, u16, Option<&str>)> = vec![
        // S3 refuses the signature.
        (presigned.to_string(), 403, None),
        // S3 cannot be reached at all.
        (format!("{closed}{presigned}"), 403, None),
        // S3 redirects again, with no Location.
        (presigned.to_string(), 307, None),
        // S3 redirects again, to a Location that is no URL.
        (presigned.to_string(), 307, Some("http://[::1")),
    ];
    for (target, s3_status, s3_location) in cases {
        let handler: Handler = Arc::new(move |_, req| {
            let registry = req.path.contains("/blobs/");
            let location = if registry {
                Some(target.clone())
            } else {
                s3_location.map(str::to_string)
            };
            Reply {
                status: if registry { 307 } else { s3_status },
                headers: location
                    .into_iter()
                    .map(|l| ("location".to_string(), l))
                    .collect(),
                body: echo.to_vec(),
                delay: Duration::ZERO,
            }
        });
        let (url, _) = serve(handler).await;
        let ecr = ecr_with(EcrOptions {
            registry_endpoint: Some(url),
            ..options()
        })
        .await;
        let error = ecr
            .package_meta(&repo, &digests["v1.0.0"])
            .await
            .expect_err("the layer cannot be read")
            .to_string();
        assert!(
            !error.contains("secret") && !error.contains("AKIDSECRET"),
            "{error}"
        );
        assert!(error.contains("s3-bucket/layer"), "says where: {error}");
    }
}

#[tokio::test]
async fn call_counts_cold_then_warm_through_the_connector() {
    let repo_a = localecr::unique("ecr/provider-count-a");
    let repo_b = localecr::unique("ecr/provider-count-b");
    let a =
        seed(json!({"repository": repo_a, "tags": ["v1.0.0", "v1.1.0"], "package": provider("a")}));
    seed(json!({"repository": repo_b, "tags": ["v1.0.0"], "package": configuration("b")}));

    let connector = EcrConnector::with_options(options(), CacheOptions::default());
    let registry = registry_ref();
    let ttl = Duration::from_secs(300);
    let counts = || async {
        connector
            .call_counts()
            .await
            .into_iter()
            .map(|(_, c)| c)
            .next()
            .unwrap_or_default()
    };

    // What the resolver does for one package: tags, digest, metadata.
    let lookup = |repo: String| {
        let connector = &connector;
        let registry = &registry;
        async move {
            let r = connector.connect(registry, None, ttl).await.unwrap();
            let tags = r.list_tags(&repo).await.unwrap();
            let digest = r
                .resolve_digest(&repo, tags.as_slice().last().unwrap())
                .await
                .unwrap();
            r.package_meta(&repo, &digest).await.unwrap();
            digest
        }
    };

    assert_eq!(lookup(repo_a.clone()).await, a["v1.1.0"]);
    let cold = counts().await;
    assert_eq!(cold, ONE_OF_EACH);
    eprintln!("cold, first package: {cold:?}");

    // A second package: the token is reused.
    lookup(repo_b.clone()).await;
    let second = counts().await.since(&cold);
    assert_eq!(second.total(), 3, "{second:?}");
    assert_eq!(second.get_authorization_token, 0);

    // Warm: the same lookups again, on a new connect (a new RunFunction call).
    let before = counts().await;
    for _ in 0..3 {
        lookup(repo_a.clone()).await;
        lookup(repo_b.clone()).await;
    }
    let warm = counts().await.since(&before);
    assert_eq!(warm, CallCounts::default(), "warm lookups made calls");
    eprintln!("warm, two packages three times: {warm:?}");
}

#[tokio::test]
async fn concurrent_identical_lookups_make_one_call() {
    let repo = localecr::unique("ecr/provider-flight");
    let digests =
        seed(json!({"repository": repo, "tags": ["v1.0.0"], "package": provider("flight")}));
    let ecr = Arc::new(ecr().await);
    let cached = CachedRegistry::with_tag_ttl(ecr.clone(), Duration::from_secs(60));

    let tags = futures_util::future::join_all((0..16).map(|_| cached.list_tags(&repo))).await;
    assert!(
        tags.iter()
            .all(|t| t.as_ref().unwrap().as_slice() == ["v1.0.0"])
    );
    let metas = futures_util::future::join_all(
        (0..16).map(|_| cached.package_meta(&repo, &digests["v1.0.0"])),
    )
    .await;
    assert!(metas.iter().all(|m| m.as_ref().unwrap().name == "flight"));
    assert_eq!(ecr.calls(), ONE_OF_EACH);
}

/// The Prometheus counter the server exports adds up exactly what each
/// client counts, labelled by operation.
#[tokio::test]
async fn calls_are_exported_as_a_prometheus_counter() {
    let repo = localecr::unique("ecr/provider-metrics");
    let digests =
        seed(json!({"repository": repo, "tags": ["v1.0.0"], "package": provider("metrics")}));
    let metrics = prometheus::Registry::new();
    let calls = function_ecr_packages::telemetry::registry_calls(&metrics).expect("metric");
    let ecr = ecr_with(EcrOptions {
        calls_metric: Some(calls.clone()),
        ..options()
    })
    .await;
    assert_eq!(ecr.list_tags(&repo).await.unwrap().as_slice(), ["v1.0.0"]);
    let digest = ecr.resolve_digest(&repo, "v1.0.0").await.unwrap();
    assert_eq!(digest, digests["v1.0.0"]);
    ecr.package_meta(&repo, &digest).await.unwrap();

    assert_eq!(ecr.calls(), ONE_OF_EACH);
    for (operation, count) in ecr.calls().by_operation() {
        assert_eq!(
            calls.with_label_values(&[operation]).get(),
            count,
            "{operation}"
        );
    }
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&metrics.gather())
        .expect("encode");
    assert!(
        text.contains("function_ecr_registry_calls_total{operation=\"ListImages\"} 1"),
        "{text}"
    );
}

/// A TCP forwarder to `target` (`http://host:port`) that can be cut, with
/// every connection through it, and brought back on the same port: the ECR
/// data plane going away mid-call.
struct Cable {
    address: std::net::SocketAddr,
    target: String,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Cable {
    async fn connect(target: &str) -> Arc<Cable> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let cable = Arc::new(Cable {
            address: listener.local_addr().expect("addr"),
            target: target.trim_start_matches("http://").to_string(),
            task: Mutex::new(None),
        });
        cable.run(listener);
        cable
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn run(&self, listener: TcpListener) {
        let target = self.target.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                connections.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        *self.task.lock().unwrap() = Some(task);
    }

    /// Drops the listener and every open connection.
    fn cut(&self) {
        if let Some(task) = self.task.lock().unwrap().take() {
            task.abort();
        }
    }

    async fn mend(&self) {
        let listener = TcpListener::bind(self.address).await.expect("rebind");
        self.run(listener);
    }
}

#[tokio::test]
async fn a_registry_cut_mid_download_and_cancelled_calls_leave_no_stuck_or_poisoned_key() {
    let env = localecr::env();
    let repo = localecr::unique("ecr/provider-cut");
    let digests = seed(json!({"repository": repo, "tags": ["v1.0.0"],
        "package": provider("cut"), "extraYamlBytes": 24_000_000}));
    let digest = digests["v1.0.0"].clone();
    let cable = Cable::connect(&env.registry_endpoint).await;
    let ecr = Arc::new(
        ecr_with(EcrOptions {
            registry_endpoint: Some(cable.url()),
            ..options()
        })
        .await,
    );
    let cached = CachedRegistry::new(ecr.clone(), CacheOptions::forgetting_failures());

    // Cut while the layer streams: the call ends, unavailable, promptly.
    let during = {
        let cached = cached.clone();
        let (repo, digest) = (repo.clone(), digest.clone());
        tokio::spawn(async move { cached.package_meta(&repo, &digest).await })
    };
    while ecr.calls().blob_get == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    cable.cut();
    let cut = tokio::time::timeout(Duration::from_secs(60), during)
        .await
        .expect("the cut call ends")
        .expect("no panic");
    if let Err(e) = &cut {
        assert!(matches!(e, Error::Unavailable { .. }), "{e}");
    }

    // Callers cancelled mid-download, several at once.
    cable.mend().await;
    for _ in 0..3 {
        let cancelled = futures_util::future::join_all((0..4).map(|_| {
            tokio::time::timeout(
                Duration::from_millis(3),
                cached.package_meta(&repo, &digest),
            )
        }))
        .await;
        assert!(
            cancelled
                .iter()
                .all(|c| c.is_err() || c.as_ref().is_ok_and(|m| m.is_ok()))
        );
    }

    // The next calls succeed: the key is neither stuck behind a dropped
    // lookup nor holding the failure.
    let metas =
        futures_util::future::join_all((0..4).map(|_| cached.package_meta(&repo, &digest))).await;
    for meta in metas {
        assert_eq!(meta.expect("read after the outage").name, "cut");
    }
}
