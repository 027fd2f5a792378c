//! `mirror` against an upstream that lies. A small proxy in this test sits
//! in front of the real upstream registry (Debian's docker-registry, seeded
//! by `scripts/localecr.py`) and changes its answers: an index child that
//! is a traversal or a tag, manifest or blob bytes that do not match their
//! digest, a `Link` to another host, a redirect to a host that asks for
//! Basic credentials over plain HTTP. Each run must fail with a named
//! error, write no manifest or tag into the ECR stand-in, and send no
//! credential to the other host (which records everything it receives).

mod support;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use localecr::{ACCEPT_MANIFESTS, LocalEcr, package_meta};
use serde_json::{Value as Json, json};
use support::localecr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The local ECR, started before `main` unless the environment names one.
#[ctor::ctor(unsafe)]
fn start_local_ecr() {
    // SAFETY: before main, while the process has one thread.
    unsafe { localecr::start_unless_running() }
}

const BINARY: &str = env!("CARGO_BIN_EXE_function-ecr-packages");
const FAMILY: &str = "upbound/provider-family-aws";
const FUNCTION: &str = "crossplane-contrib/function-x";
/// `user:pass`, as the Docker config keeps it for the proxy's host.
const CREDENTIALS: &str = "dXNlcjpwYXNz";

/// How the proxy lies.
#[derive(Clone, Debug)]
enum Lie {
    /// Every index's children get this "digest"; the index is served
    /// without a Docker-Content-Digest so only the child is wrong.
    ChildDigest(String),
    /// Manifests read by tag come with one byte more than their digest.
    ManifestBytes,
    /// This blob's last byte is flipped (same length).
    BlobBytes(String),
    /// Tag lists name a next page on the foreign host.
    ForeignLink,
    /// The proxy wants Basic credentials, then redirects blob reads to the
    /// foreign host, which asks for Basic credentials over plain HTTP.
    RedirectToBasic,
    /// None: a second host serving the same registry (a look-alike).
    Nothing,
}

/// What a host received: the request line and the Authorization header.
type Log = Arc<Mutex<Vec<String>>>;

struct Request {
    line: String,
    method: String,
    path: String,
    authorization: Option<String>,
    accept: Option<String>,
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Request> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? != 1 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let line = head.lines().next().unwrap_or_default().to_string();
    let mut parts = line.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let content_length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; content_length];
    stream.read_exact(&mut body).await.ok()?;
    Some(Request {
        authorization: header("authorization"),
        accept: header("accept"),
        line,
        method,
        path,
    })
}

async fn respond(
    stream: &mut tokio::net::TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) {
    let mut head = format!("HTTP/1.1 {status} X\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body).await;
}

/// A host that records what it receives and asks for Basic credentials.
async fn foreign_host() -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let host = listener.local_addr().expect("addr").to_string();
    let log: Log = Arc::default();
    let seen = log.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let Some(request) = read_request(&mut stream).await else {
                    return;
                };
                seen.lock().expect("log").push(format!(
                    "{} [{}]",
                    request.line,
                    request.authorization.unwrap_or_default()
                ));
                let headers = [(
                    "WWW-Authenticate".to_string(),
                    "Basic realm=\"foreign\"".to_string(),
                )];
                respond(&mut stream, 401, &headers, b"").await;
            });
        }
    });
    (host, log)
}

/// The lying proxy in front of `upstream`; returns its host and its log.
async fn proxy(upstream: String, lie: Lie, foreign: String) -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let host = listener.local_addr().expect("addr").to_string();
    let log: Log = Arc::default();
    let seen = log.clone();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (seen, client, upstream, lie, foreign) = (
                seen.clone(),
                client.clone(),
                upstream.clone(),
                lie.clone(),
                foreign.clone(),
            );
            tokio::spawn(async move {
                let Some(request) = read_request(&mut stream).await else {
                    return;
                };
                seen.lock().expect("log").push(format!(
                    "{} [{}]",
                    request.line,
                    request.authorization.clone().unwrap_or_default()
                ));
                let is_blob = request.path.contains("/blobs/sha256:");
                if let Lie::RedirectToBasic = lie {
                    if request.authorization.as_deref() != Some(&format!("Basic {CREDENTIALS}")) {
                        let headers = [(
                            "WWW-Authenticate".to_string(),
                            "Basic realm=\"proxy\"".to_string(),
                        )];
                        respond(&mut stream, 401, &headers, b"").await;
                        return;
                    }
                    if is_blob && request.method == "GET" {
                        let headers = [(
                            "Location".to_string(),
                            format!("http://{foreign}/collect{}", request.path),
                        )];
                        respond(&mut stream, 307, &headers, b"").await;
                        return;
                    }
                }
                let method = reqwest::Method::from_bytes(request.method.as_bytes())
                    .unwrap_or(reqwest::Method::GET);
                let mut forward =
                    client.request(method, format!("http://{upstream}{}", request.path));
                if let Some(accept) = &request.accept {
                    forward = forward.header("accept", accept);
                }
                let Ok(response) = forward.send().await else {
                    respond(&mut stream, 502, &[], b"").await;
                    return;
                };
                let status = response.status().as_u16();
                let mut headers: Vec<(String, String)> = response
                    .headers()
                    .iter()
                    .filter(|(k, _)| {
                        !matches!(
                            k.as_str(),
                            "content-length" | "connection" | "transfer-encoding"
                        )
                    })
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
                    .collect();
                let mut body = response.bytes().await.unwrap_or_default().to_vec();
                let is_manifest = request.path.contains("/manifests/");
                let by_tag = is_manifest && !request.path.contains("/manifests/sha256:");
                match &lie {
                    Lie::ChildDigest(child) if is_manifest && status == 200 => {
                        if let Ok(mut json) = serde_json::from_slice::<Json>(&body)
                            && let Some(children) =
                                json.get_mut("manifests").and_then(Json::as_array_mut)
                        {
                            for c in children {
                                c["digest"] = json!(child);
                            }
                            body = serde_json::to_vec(&json).expect("json");
                            headers.retain(|(k, _)| k != "docker-content-digest");
                        }
                    }
                    Lie::ManifestBytes if by_tag && status == 200 => body.push(b' '),
                    Lie::BlobBytes(digest)
                        if status == 200 && request.path.ends_with(&format!("/blobs/{digest}")) =>
                    {
                        if let Some(last) = body.last_mut() {
                            *last ^= 0xff;
                        }
                    }
                    Lie::ForeignLink if request.path.contains("/tags/list") => {
                        let path = request.path.split('?').next().unwrap_or_default();
                        headers.push((
                            "Link".to_string(),
                            format!("<http://{foreign}{path}?n=1000&last=v1.0.0>; rel=\"next\""),
                        ));
                    }
                    _ => {}
                }
                if request.method == "HEAD" {
                    let length = body.len();
                    let mut head = format!("HTTP/1.1 {status} X\r\n");
                    for (k, v) in &headers {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    head.push_str(&format!(
                        "Content-Length: {length}\r\nConnection: close\r\n\r\n"
                    ));
                    let _ = stream.write_all(head.as_bytes()).await;
                    return;
                }
                respond(&mut stream, status, &headers, &body).await;
            });
        }
    });
    (host, log)
}

/// A family provider (a plain image) and a function (a two-platform
/// index), seeded upstream under a prefix of their own.
struct Seeded {
    ecr: LocalEcr,
    unique: String,
    seeded: Json,
}

fn seed() -> Seeded {
    let ecr = localecr::env();
    let unique = localecr::unique("adversarial");
    let images = json!([
        {"repository": format!("{unique}/{FAMILY}"), "tags": ["v1.0.0"],
         "runtimeLayers": 1, "package": package_meta("Provider", "provider-family-aws", json!([]))},
        {"repository": format!("{unique}/{FUNCTION}"), "tags": ["v0.1.0"], "layout": "index",
         "platforms": ["linux/amd64", "linux/arm64"],
         "package": package_meta("Function", "function-x", json!([]))},
    ]);
    let seeded = ecr.seed_upstream(&json!({ "images": images }));
    Seeded {
        ecr,
        unique,
        seeded,
    }
}

struct Outcome {
    code: Option<i32>,
    stderr: String,
    proxy: Vec<String>,
    foreign: Vec<String>,
}

impl Seeded {
    /// Runs `mirror` of `package` (a path under the prefix, with a version
    /// or not) through a proxy telling `lie`.
    async fn mirror(&self, lie: Lie, package: &str, target: &str) -> Outcome {
        let (foreign, foreign_log) = foreign_host().await;
        let (proxy, proxy_log) = proxy(self.ecr.upstream.clone(), lie, foreign).await;
        let scratch = localecr::Scratch::new("adversarial");
        std::fs::write(
            scratch.join("config.json"),
            json!({"auths": {proxy.clone(): {"auth": CREDENTIALS}}}).to_string(),
        )
        .expect("docker config");
        let region = self.ecr.region.clone();
        let mirror_flag = format!("{proxy}/{}/={target}/", self.unique);
        let package = format!("{proxy}/{}/{package}", self.unique);
        let scratch_dir = scratch.to_path_buf();
        let out = tokio::task::spawn_blocking(move || {
            Command::new(BINARY)
                .arg("mirror")
                .args(["--account-id", localecr::ACCOUNT_ID, "--region", &region])
                .args(["--mirror", &mirror_flag])
                .arg(&package)
                .env("DOCKER_CONFIG", &scratch_dir)
                .stdin(Stdio::null())
                .output()
                .expect("run mirror")
        })
        .await
        .expect("join");
        drop(scratch);
        Outcome {
            code: out.status.code(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            proxy: proxy_log.lock().expect("log").clone(),
            foreign: foreign_log.lock().expect("log").clone(),
        }
    }

    fn digest(&self, repository: &str, tag: &str) -> String {
        self.seeded[format!("{}/{repository}", self.unique)][tag]
            .as_str()
            .expect("seeded")
            .to_string()
    }

    /// Nothing at all was written to the target: the write counter of the
    /// ECR stand-in is 0 and no repository was created under it.
    async fn assert_no_write(&self, target: &str) {
        let written = self.ecr.written(&format!("{target}/")).await;
        assert_eq!(
            written,
            localecr::Written {
                writes: 0,
                repositories: vec![]
            },
            "written to {target}/"
        );
    }

    /// Nothing was written to the target: no tag and no manifest of the
    /// image in its ECR repository.
    async fn assert_nothing_written(&self, target: &str, repository: &str, tag: &str) {
        let repo = format!("{target}/{repository}");
        let tags = self
            .ecr
            .registry_get(&format!("/v2/{repo}/tags/list"), None)
            .await;
        if tags.status == 200 {
            let listed: Json = serde_json::from_slice(&tags.body).unwrap_or(Json::Null);
            let none = listed["tags"].as_array().is_none_or(Vec::is_empty);
            assert!(none, "tags were written to {repo}: {listed}");
        }
        let digest = self.digest(repository, tag);
        let manifest = self
            .ecr
            .registry_get(
                &format!("/v2/{repo}/manifests/{digest}"),
                Some(ACCEPT_MANIFESTS),
            )
            .await;
        assert_ne!(manifest.status, 200, "{repo}@{digest} was written");
    }
}

impl Outcome {
    fn assert_refused(&self, says: &[&str]) -> &Self {
        eprintln!(
            "mirror said:\n{}\nproxy saw: {:#?}\nforeign host saw: {:#?}",
            self.stderr, self.proxy, self.foreign
        );
        assert_ne!(self.code, Some(0), "mirror succeeded:\n{}", self.stderr);
        for s in says {
            assert!(
                self.stderr.contains(s),
                "the error does not say {s:?}:\n{}",
                self.stderr
            );
        }
        self
    }

    /// No credential reached the foreign host.
    fn assert_no_credential_off_host(&self) -> &Self {
        for line in &self.foreign {
            assert!(line.ends_with("[]"), "a credential went off host: {line}");
        }
        assert!(
            !self.stderr.contains(CREDENTIALS),
            "the credentials are in a message:\n{}",
            self.stderr
        );
        self
    }
}

#[tokio::test]
async fn a_traversal_digest_in_an_index_is_refused() {
    let s = seed();
    let target = localecr::unique("adv-traversal");
    let out = s
        .mirror(
            Lie::ChildDigest("../../../other/repo/manifests/v9.9.9".into()),
            &format!("{FUNCTION}:v0.1.0"),
            &target,
        )
        .await;
    out.assert_refused(&["is not a digest", "other/repo/manifests/v9.9.9"])
        .assert_no_credential_off_host();
    assert!(
        out.proxy
            .iter()
            .all(|l| !l.contains("v9.9.9") && !l.contains("..")),
        "the traversal was requested: {:#?}",
        out.proxy
    );
    s.assert_nothing_written(&target, FUNCTION, "v0.1.0").await;
    s.assert_no_write(&target).await;
}

#[tokio::test]
async fn a_tag_posing_as_a_digest_in_an_index_is_refused() {
    let s = seed();
    let target = localecr::unique("adv-tag");
    let out = s
        .mirror(
            Lie::ChildDigest("v9.9.9".into()),
            &format!("{FUNCTION}:v0.1.0"),
            &target,
        )
        .await;
    out.assert_refused(&["\"v9.9.9\" is not a digest"])
        .assert_no_credential_off_host();
    assert!(
        out.proxy.iter().all(|l| !l.contains("/manifests/v9.9.9")),
        "the tag was followed: {:#?}",
        out.proxy
    );
    s.assert_nothing_written(&target, FUNCTION, "v0.1.0").await;
    s.assert_no_write(&target).await;
}

#[tokio::test]
async fn a_manifest_that_does_not_match_its_digest_is_refused() {
    let s = seed();
    let target = localecr::unique("adv-manifest");
    let out = s
        .mirror(Lie::ManifestBytes, &format!("{FAMILY}:v1.0.0"), &target)
        .await;
    out.assert_refused(&["does not match its digest"])
        .assert_no_credential_off_host();
    s.assert_nothing_written(&target, FAMILY, "v1.0.0").await;
    s.assert_no_write(&target).await;
}

#[tokio::test]
async fn a_blob_that_does_not_match_its_digest_is_refused() {
    let s = seed();
    let target = localecr::unique("adv-blob");
    // The config blob: `mirror` copies it, the package reader does not
    // read it, so only the copy's own hashing can catch it.
    let digest = s.digest(FAMILY, "v1.0.0");
    let manifest = s
        .ecr
        .upstream_get(
            &format!("/v2/{}/{FAMILY}/manifests/{digest}", s.unique),
            Some(ACCEPT_MANIFESTS),
        )
        .await;
    let manifest: Json = serde_json::from_slice(&manifest.body).expect("manifest");
    let config = manifest["config"]["digest"]
        .as_str()
        .expect("config")
        .to_string();
    let out = s
        .mirror(
            Lie::BlobBytes(config.clone()),
            &format!("{FAMILY}:v1.0.0"),
            &target,
        )
        .await;
    out.assert_refused(&["does not match its digest", &config])
        .assert_no_credential_off_host();
    s.assert_nothing_written(&target, FAMILY, "v1.0.0").await;
    // A blob is verified as it streams into its upload, so the repository
    // was created and its upload opened (a write counted), but that upload
    // was never completed: no blob under that digest, no manifest, no tag.
    // The image's other blobs are copied at the same time, each verified
    // on its own, so they may have been uploaded: at most two writes per
    // blob (the upload opened, its bytes sent).
    let repo = format!("{target}/{FAMILY}");
    let written = s.ecr.written(&format!("{target}/")).await;
    assert_eq!(written.repositories, [repo.as_str()]);
    let blobs = 1 + manifest["layers"].as_array().map_or(0, |l| l.len() as u64);
    assert!(
        (1..=2 * blobs).contains(&written.writes),
        "{} writes for {blobs} blobs",
        written.writes
    );
    let blob = s
        .ecr
        .registry_get(&format!("/v2/{repo}/blobs/{config}"), None)
        .await;
    assert_eq!(blob.status, 404, "the unverified blob was committed");
}

#[tokio::test]
async fn a_link_to_another_host_is_not_followed() {
    let s = seed();
    let target = localecr::unique("adv-link");
    let out = s.mirror(Lie::ForeignLink, FAMILY, &target).await;
    out.assert_refused(&["the Link header names another host"])
        .assert_no_credential_off_host();
    assert!(out.foreign.is_empty(), "{:#?}", out.foreign);
    s.assert_nothing_written(&target, FAMILY, "v1.0.0").await;
    s.assert_no_write(&target).await;
}

#[tokio::test]
async fn a_redirect_to_a_host_asking_for_basic_credentials_gets_none() {
    let s = seed();
    let target = localecr::unique("adv-redirect");
    let out = s
        .mirror(Lie::RedirectToBasic, &format!("{FAMILY}:v1.0.0"), &target)
        .await;
    out.assert_refused(&["which asks for credentials"])
        .assert_no_credential_off_host();
    // The proxy, the registry the credentials are for, did get them.
    assert!(
        out.proxy
            .iter()
            .any(|l| l.ends_with(&format!("[Basic {CREDENTIALS}]"))),
        "{:#?}",
        out.proxy
    );
    assert!(!out.foreign.is_empty(), "the redirect was not followed");
    s.assert_nothing_written(&target, FAMILY, "v1.0.0").await;
    s.assert_no_write(&target).await;
}

/// Dependency confusion: two packages of the closure declare the same
/// dependency on two hosts that the mirror table sends to one ECR
/// repository (as the default table does for xpkg.upbound.io and
/// xpkg.crossplane.io). `mirror` refuses, naming both, instead of reading
/// it from whichever host sorts first; nothing is written.
#[tokio::test]
async fn one_repository_declared_on_two_hosts_is_refused_naming_both() {
    let ecr = localecr::env();
    let (foreign, _) = foreign_host().await;
    let (lookalike, lookalike_log) = proxy(ecr.upstream.clone(), Lie::Nothing, foreign).await;
    let unique = localecr::unique("confusion");
    let real = format!("{}/{unique}", ecr.upstream);
    let fake = format!("{lookalike}/{unique}");
    let depends =
        |host: &str| json!([{"provider": format!("{host}/{FAMILY}"), "version": ">=v1.0.0"}]);
    let images = json!([
        {"repository": format!("{unique}/{FAMILY}"), "tags": ["v1.0.0"],
         "package": package_meta("Provider", "provider-family-aws", json!([]))},
        {"repository": format!("{unique}/upbound/provider-aws-s3"), "tags": ["v1.0.0"],
         "package": package_meta("Provider", "provider-aws-s3", depends(&real))},
        {"repository": format!("{unique}/upbound/provider-aws-ec2"), "tags": ["v1.0.0"],
         "package": package_meta("Provider", "provider-aws-ec2", depends(&fake))},
    ]);
    let seeded = ecr.seed_upstream(&json!({ "images": images }));
    let target = localecr::unique("adv-confusion");
    let scratch = localecr::Scratch::new("adversarial");
    let region = ecr.region.clone();
    let (real_flag, fake_flag) = (format!("{real}/={target}/"), format!("{fake}/={target}/"));
    let packages = [
        format!("{real}/upbound/provider-aws-s3:v1.0.0"),
        format!("{real}/upbound/provider-aws-ec2:v1.0.0"),
    ];
    let scratch_dir = scratch.to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BINARY)
            .arg("mirror")
            .args(["--account-id", localecr::ACCOUNT_ID, "--region", &region])
            .args(["--mirror", &real_flag, "--mirror", &fake_flag])
            .args(&packages)
            .env("DOCKER_CONFIG", &scratch_dir)
            .stdin(Stdio::null())
            .output()
            .expect("run mirror")
    })
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("mirror said:\n{stderr}");
    assert_ne!(out.status.code(), Some(0), "mirror succeeded:\n{stderr}");
    for path in [format!("{real}/{FAMILY}"), format!("{fake}/{FAMILY}")] {
        assert!(stderr.contains(&path), "{path} not named:\n{stderr}");
    }
    assert!(stderr.contains("two upstreams"), "{stderr}");
    // Nothing of the family was read from the look-alike, nor written.
    let lookalike_log = lookalike_log.lock().expect("log").clone();
    assert!(
        !lookalike_log.iter().any(|l| l.contains("/blobs/")),
        "{lookalike_log:#?}"
    );
    let s = Seeded {
        ecr,
        unique,
        seeded,
    };
    s.assert_nothing_written(&target, FAMILY, "v1.0.0").await;
    s.assert_no_write(&target).await;
}
