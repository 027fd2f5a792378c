//! The client against loopback servers: the token handshake, tags off the
//! grammar, and credentials and presigned URLs kept out of every message
//! and off other hosts.

use std::sync::Mutex;
use std::time::Duration;

use super::*;
use crate::oci::xpkg::error_chain;
use crate::reference;

/// A server on loopback that answers every request with `answer(head)`
/// (the request as far as the first read got), after logging the head;
/// returns its `host:port` and the log.
async fn serve(
    answer: impl Fn(&str) -> String + Send + Sync + 'static,
) -> (String, std::sync::Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let host = listener.local_addr().expect("addr").to_string();
    let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let response = answer(&head);
            log.lock().expect("log").push(head);
            let _ = stream.write_all(response.as_bytes()).await;
        }
    });
    (host, seen)
}

/// A registry on loopback that wants a Bearer token from its own realm,
/// which hands one out only for the right Basic credentials and scope.
async fn token_registry() -> (String, std::sync::Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let host = listener.local_addr().expect("addr").to_string();
    let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let realm = format!("http://{host}/token");
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).to_string();
            let line = head.lines().next().unwrap_or_default().to_string();
            let authorization = head
                .lines()
                .find_map(|l| l.strip_prefix("authorization: "))
                .unwrap_or_default()
                .to_string();
            log.lock()
                .expect("log")
                .push(format!("{line} [{authorization}]"));
            let (status, extra, body) = if line.starts_with("GET /token?") {
                if line.contains("scope=repository%3Ateam%2Fpkg%3Apull")
                    && authorization == "Basic dXNlcjpwYXNz"
                {
                    ("200 OK", String::new(), r#"{"token":"t0k3n"}"#.to_string())
                } else {
                    ("401 Unauthorized", String::new(), String::new())
                }
            } else if authorization == "Bearer t0k3n" {
                (
                    "200 OK",
                    String::new(),
                    r#"{"tags":["v1.0.0","v1.1.0"]}"#.to_string(),
                )
            } else {
                (
                    "401 Unauthorized",
                    format!("WWW-Authenticate: Bearer realm=\"{realm}\",service=\"test\"\r\n"),
                    String::new(),
                )
            };
            let response = format!(
                "HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        }
    });
    (host, seen)
}

#[tokio::test]
async fn bearer_challenges_are_answered_with_a_token_from_the_realm() {
    let (host, seen) = token_registry().await;
    let client = Distribution::new(
        &host,
        Auth::Basic("dXNlcjpwYXNz".into()),
        Duration::from_secs(5),
    )
    .expect("client");
    let tags = client.tags("team/pkg").await.expect("tags");
    assert_eq!(tags, ["v1.0.0", "v1.1.0"]);
    // Once a token is held, no new challenge is needed.
    client.tags("team/pkg").await.expect("tags again");
    let seen = seen.lock().expect("log").clone();
    assert_eq!(seen.len(), 4, "challenge, token, answer, answer: {seen:#?}");
    assert!(
        seen[1].starts_with("GET /token?service=test&scope="),
        "{seen:#?}"
    );

    let anonymous =
        Distribution::new(&host, Auth::Anonymous, Duration::from_secs(5)).expect("client");
    let error = anonymous
        .tags("team/pkg")
        .await
        .expect_err("no credentials");
    assert!(matches!(error, Error::Unauthorized { .. }), "{error}");
}

/// A tag list naming a tag off the grammar is refused, naming it and
/// where it came from.
#[tokio::test]
async fn tags_off_the_grammar_are_refused() {
    let (host, _) = serve(|_| {
        let body = r#"{"tags":["v1.0.0","../../x/manifests/v9"]}"#;
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    })
    .await;
    let client = Distribution::new(&host, Auth::Anonymous, Duration::from_secs(5)).expect("client");
    let error = client.tags("team/pkg").await.expect_err("refused");
    assert!(
        matches!(error, Error::Reference(reference::Error::Tag { .. })),
        "{error}"
    );
    let said = error.to_string();
    assert!(
        said.contains("tag 1 of the tag list of") && said.contains("../../x/manifests/v9"),
        "{said}"
    );
    // Asked-for values off the grammar never reach a request either.
    for (repository, reference) in [
        ("team/../x", "v1"),
        ("team/pkg", "../x"),
        ("team/pkg", "a?b"),
    ] {
        let error = client
            .manifest(repository, reference)
            .await
            .expect_err("refused");
        assert!(matches!(error, Error::Reference(_)), "{error}");
    }
}

#[tokio::test]
async fn presigned_redirects_never_reach_error_messages() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_at = closed.local_addr().expect("addr");
    drop(closed);
    let (host, _) = serve(move |_| {
        format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{closed_at}/bucket/blob?X-Amz-Signature=secret\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    })
    .await;
    let client = Distribution::new(&host, Auth::Anonymous, Duration::from_secs(5)).expect("client");
    let Err(error) = client
        .blob("team/pkg", &format!("sha256:{}", "a".repeat(64)), None)
        .await
    else {
        panic!("the redirect target is closed");
    };
    let shown = error.to_string();
    assert!(!shown.contains("secret"), "{shown}");
    let mut source = std::error::Error::source(&error);
    while let Some(s) = source {
        assert!(!s.to_string().contains("secret"), "{s}");
        source = s.source();
    }
}

/// A transport failure shows its cause in its message and nowhere
/// else, so the message and the whole chain are the same text.
#[tokio::test]
async fn transport_failures_say_their_cause_once() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let host = closed.local_addr().expect("addr").to_string();
    drop(closed);
    let client = Distribution::new(&host, Auth::Anonymous, Duration::from_secs(5)).expect("client");
    let error = client.tags("team/pkg").await.expect_err("closed");
    assert!(matches!(error, Error::Http { .. }), "{error}");
    assert!(std::error::Error::source(&error).is_none(), "{error}");
    assert_eq!(error_chain(&error), error.to_string());
}

/// Every message and source of `error`, joined.
fn everything_said(error: &Error) -> String {
    let mut said = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        said.push_str(&format!(" | {s}"));
        source = s.source();
    }
    said
}

/// An object store that refuses a presigned URL and echoes the
/// credential in its error body: neither the query nor the echo reaches
/// a message, for a blob read, a manifest read and a tag list.
#[tokio::test]
async fn presigned_queries_and_echoed_credentials_never_reach_messages() {
    let (host, _) = serve(|head| {
        if head.starts_with("GET /v2/") {
        "HTTP/1.1 307 Temporary Redirect\r\nLocation: /bucket/blob?X-Amz-Signature=s3cr3t&X-Amz-Credential=AKIDSECRET\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
    } else {
        let body = "<Error><Code>SignatureDoesNotMatch</Code><AWSAccessKeyId>AKIDSECRET</AWSAccessKeyId><StringToSign>X-Amz-Signature=s3cr3t</StringToSign> Authorization: Basic dXNlcjpwYXNz</Error>";
        format!(
            "HTTP/1.1 403 Forbidden\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }
    })
    .await;
    let client = Distribution::new(&host, Auth::Anonymous, Duration::from_secs(5)).expect("client");
    let digest = format!("sha256:{}", "a".repeat(64));
    let mut errors = Vec::new();
    match client.blob("team/pkg", &digest, None).await {
        Err(e) => errors.push(e),
        Ok(_) => panic!("S3 refused"),
    }
    errors.push(
        client
            .manifest("team/pkg", &digest)
            .await
            .expect_err("S3 refused"),
    );
    errors.push(client.tags("team/pkg").await.expect_err("S3 refused"));
    for error in &errors {
        let said = everything_said(error);
        for secret in ["s3cr3t", "AKIDSECRET", "dXNlcjpwYXNz", "X-Amz-"] {
            assert!(!said.contains(secret), "{secret} in: {said}");
        }
        assert!(said.contains("403"), "says what happened: {said}");
    }
}

/// A Bearer challenge naming a token realm on another host gets no
/// Basic credentials: the realm host receives nothing at all; unless
/// the Docker config holds the same credentials for that host.
#[tokio::test]
async fn basic_credentials_never_go_to_a_realm_on_another_host() {
    let (foreign_host, received) = serve(|_| {
        "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nConnection: close\r\n\r\n{\"token\":\"t\"}"
            .to_string()
    })
    .await;
    let realm_host = foreign_host.clone();
    let (host, _) = serve(move |_| {
        format!(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://{realm_host}/token\",service=\"x\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    })
    .await;
    let client = Distribution::new(
        &host,
        Auth::Basic("dXNlcjpwYXNz".into()),
        Duration::from_secs(5),
    )
    .expect("client");
    let error = client.tags("team/pkg").await.expect_err("refused");
    assert!(matches!(error, Error::OffHost { .. }), "{error}");
    assert!(!error.to_string().contains("dXNlcjpwYXNz"), "{error}");
    assert!(
        received.lock().expect("log").is_empty(),
        "the foreign realm got: {:#?}",
        received.lock().expect("log")
    );

    // Named by the Docker config with the same credentials: the realm
    // is asked (over loopback) with them.
    let named = Distribution::new(
        &host,
        Auth::Basic("dXNlcjpwYXNz".into()),
        Duration::from_secs(5),
    )
    .expect("client")
    .with_realm_hosts(vec![foreign_host.clone()]);
    let _ = named.tags("team/pkg").await;
    let received = received.lock().expect("log").clone();
    assert!(
        received
            .iter()
            .any(|r| r.contains("authorization: Basic dXNlcjpwYXNz")),
        "{received:#?}"
    );
}

/// A blob's stream hands on no byte of its last chunk until the bytes
/// hash to their digest: a consumer streaming it into an upload never
/// sends a whole blob that fails its check, and gets the mismatch.
#[tokio::test]
async fn a_blob_that_does_not_hash_never_reaches_its_end() {
    use futures::StreamExt;
    let body = "tampered bytes";
    let (host, _) = serve(move |_| {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    })
    .await;
    let client = Distribution::new(&host, Auth::Anonymous, Duration::from_secs(5)).expect("client");
    let good = reference::Digest::sha256(body.as_bytes());
    let items: Vec<Result<bytes::Bytes>> = client
        .blob("team/pkg", good.as_str(), Some(body.len() as u64))
        .await
        .expect("opened")
        .collect()
        .await;
    let read: Vec<u8> = items.iter().flatten().flatten().copied().collect();
    assert_eq!(read, body.as_bytes(), "what hashes is handed on whole");

    let other = reference::Digest::sha256(b"the original bytes");
    let items: Vec<Result<bytes::Bytes>> = client
        .blob("team/pkg", other.as_str(), None)
        .await
        .expect("opened")
        .collect()
        .await;
    let read: usize = items.iter().flatten().map(|c| c.len()).sum();
    assert!(
        read < body.len(),
        "the last chunk is held back: {read} bytes"
    );
    match items.last() {
        Some(Err(Error::Reference(reference::Error::Mismatch { .. }))) => {}
        other => panic!("ends with the mismatch, not {other:?}"),
    }
}
