//! Keeping credentials out of messages: presigned queries, passwords in
//! URLs, and whatever a registry or object store echoes back.

use reqwest::Url;

/// Text from a registry or object store, on one line, with every word
/// that could carry a credential (a presigned query, an echoed header, the
/// word after `Basic`/`Bearer`) replaced.
pub fn redact_text(text: &str) -> String {
    const SECRET: [&str; 9] = [
        "x-amz-",
        "signature",
        "credential",
        "token",
        "authorization",
        "password",
        "secret",
        "?",
        "&",
    ];
    let mut after_scheme = false;
    text.split_whitespace()
        .map(|word| {
            let lower = word.to_ascii_lowercase();
            let secret = after_scheme || SECRET.iter().any(|s| lower.contains(s));
            after_scheme = lower.trim_matches(|c: char| !c.is_ascii_alphanumeric()) == "basic"
                || lower.trim_matches(|c: char| !c.is_ascii_alphanumeric()) == "bearer";
            if secret { "[redacted]" } else { word }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A URL without its query: presigned URLs carry credentials there.
pub fn redact(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    let _ = url.set_password(None);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_drops_queries_and_passwords() {
        let url =
            Url::parse("https://u:secret@s3.example.com/blob?X-Amz-Signature=abc").expect("url");
        let shown = redact(&url);
        assert!(
            !shown.contains("secret") && !shown.contains("abc"),
            "{shown}"
        );
    }
}
