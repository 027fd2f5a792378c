//! Which hosts a request and its credentials may go to: plain HTTP only
//! to loopback, credentials over HTTPS (or to loopback) only, and how a
//! URL is named in a message or a Docker config.

use reqwest::Url;

/// `host[:port]` of a URL, as a Docker config names it.
pub(super) fn authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// `scheme://host[:port]` of a URL, for messages.
pub(super) fn origin(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

/// Whether credentials may travel to `url`: over HTTPS, or plain HTTP to
/// loopback only.
pub(super) fn may_carry_credentials(url: &Url) -> bool {
    let loopback = match url.host_str().unwrap_or_default() {
        "localhost" => true,
        host => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
    };
    url.scheme() == "https" || (url.scheme() == "http" && loopback)
}

/// Whether a registry host is reached over plain HTTP.
pub fn is_plain_http(host: &str) -> bool {
    let name = host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            name
        } else {
            host
        }
    });
    matches!(name, "localhost" | "127.0.0.1" | "[::1]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback() {
        for (host, plain) in [
            ("localhost", true),
            ("localhost:5000", true),
            ("127.0.0.1:41234", true),
            ("[::1]:5000", true),
            ("xpkg.upbound.io", false),
            ("127.0.0.1.nip.io", false),
            ("localhost.example.com:5000", false),
        ] {
            assert_eq!(is_plain_http(host), plain, "{host}");
        }
    }

    #[test]
    fn credentials_go_over_https_or_to_loopback_only() {
        for (url, ok) in [
            ("https://registry.example/v2/", true),
            ("http://127.0.0.1:5000/v2/", true),
            ("http://localhost:5000/v2/", true),
            ("http://[::1]:5000/v2/", true),
            ("http://registry.example/v2/", false),
            ("http://127.0.0.1.nip.io/v2/", false),
            ("ftp://registry.example/", false),
        ] {
            let url = Url::parse(url).expect("url");
            assert_eq!(may_carry_credentials(&url), ok, "{url}");
        }
    }
}
