//! The trust model in code. The Composition's input is the platform team's
//! policy and is trusted; the XR (or the claim behind it) is a request from
//! an app team and is not. Every privilege an XR can ask for (the registry
//! read with the function's identity, IAM role names, OIDC providers,
//! service accounts, node roles, runtime configs) is checked here against
//! the input's allowlists before anything is read from AWS.
//!
//! An allowlist that is empty (or missing) means the XR may not set the
//! field at all; the input's own value or the built-in default is used.
//! `allowedRegistries` is the one exception: missing or empty (`[]`, read
//! as missing, see [`Input::allowed_registries`]) means any registry, since
//! the function's own AWS identity already bounds what it can read.

use super::activation::Definitions;
use super::input::{AllowedRegistry, AllowedServiceAccount, Input};
use super::xr::{Identity, RegistrySpec, ServiceAccount, XrSpec};
use crate::error::{Error, Result};

/// Who wrote the XR, and so whether the input's allowlists bound it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A RunFunction call: the XR is an app team's request.
    Request,
    /// `bootstrap`: the platform team runs it on its own XR.
    Platform,
}

/// Checks an XR's requests against an input's allowlists.
pub struct Policy<'a> {
    input: &'a Input,
    origin: Origin,
}

impl<'a> Policy<'a> {
    pub fn new(input: &'a Input, origin: Origin) -> Self {
        Self { input, origin }
    }

    /// Every check that needs nothing but the XR's spec: the registry and
    /// the runtime configs. IAM is checked as its settings are worked out.
    pub fn check_spec(&self, spec: &XrSpec) -> Result<()> {
        self.check_registry(&spec.registry)?;
        for (i, package) in spec.packages.iter().enumerate() {
            if let Some(runtime) = &package.runtime_config_name {
                self.check(
                    &format!("spec.packages[{i}].runtimeConfigName"),
                    runtime,
                    "allowedRuntimeConfigs",
                    &self.input.allowed_runtime_configs,
                )?;
            }
        }
        Ok(())
    }

    fn check_registry(&self, registry: &RegistrySpec) -> Result<()> {
        let Some(allowed) = &self.input.allowed_registries else {
            return Ok(());
        };
        if self.origin == Origin::Platform || registry_allowed(allowed, registry) {
            return Ok(());
        }
        Err(refused(
            "spec.registry",
            "allowedRegistries",
            format!(
                "account {:?} in region {:?} is not an allowed registry",
                registry.account_id, registry.region
            ),
        ))
    }

    /// `value`, set by the XR at `field`, must match one of `patterns`.
    pub fn check(
        &self,
        field: &str,
        value: &str,
        allowlist: &str,
        patterns: &[String],
    ) -> Result<()> {
        if self.origin == Origin::Platform || matches_any(patterns, value) {
            return Ok(());
        }
        Err(not_allowed(field, value, allowlist, patterns.is_empty()))
    }

    /// An entry of `spec.packages[].activate` must be within one of the
    /// input's `allowedActivations` (see [`Definitions::within`]).
    pub fn check_activation(&self, field: &str, asked: &Definitions) -> Result<()> {
        let allowed = &self.input.allowed_activations;
        if self.origin == Origin::Platform || allowed.iter().any(|a| asked.within(a)) {
            return Ok(());
        }
        Err(not_allowed(
            field,
            &asked.pattern(),
            "allowedActivations",
            allowed.is_empty(),
        ))
    }

    /// The identity an XR asks for must be in `iam.allowedIdentities`, or
    /// be `default` (the input's own, or the derived one) when that list
    /// is empty.
    pub fn check_identity(&self, asked: Identity, default: Identity) -> Result<()> {
        let listed = &self.input.iam.allowed_identities;
        let allowed = if listed.is_empty() {
            std::slice::from_ref(&default)
        } else {
            listed.as_slice()
        };
        if self.origin == Origin::Platform || allowed.contains(&asked) {
            return Ok(());
        }
        let names: Vec<&str> = allowed.iter().map(|i| i.as_str()).collect();
        Err(refused(
            "spec.iam.identity",
            "iam.allowedIdentities",
            format!(
                "{:?} is not allowed (allowed: {})",
                asked.as_str(),
                names.join(", ")
            ),
        ))
    }

    /// Each service account the XR names must match one allowed pair.
    pub fn check_service_accounts(&self, accounts: &[ServiceAccount]) -> Result<()> {
        let allowed = &self.input.iam.allowed_service_accounts;
        for (i, account) in accounts.iter().enumerate() {
            if self.origin == Origin::Platform || service_account_allowed(allowed, account) {
                continue;
            }
            return Err(not_allowed(
                &format!("spec.iam.serviceAccounts[{i}]"),
                &format!("{}/{}", account.namespace, account.name),
                "iam.allowedServiceAccounts",
                allowed.is_empty(),
            ));
        }
        Ok(())
    }
}

fn registry_allowed(allowed: &[AllowedRegistry], registry: &RegistrySpec) -> bool {
    allowed.iter().any(|a| {
        glob_match(&a.account_id, &registry.account_id) && glob_match(&a.region, &registry.region)
    })
}

fn service_account_allowed(allowed: &[AllowedServiceAccount], sa: &ServiceAccount) -> bool {
    allowed
        .iter()
        .any(|a| glob_match(&a.namespace, &sa.namespace) && glob_match(&a.name, &sa.name))
}

fn not_allowed(field: &str, value: &str, allowlist: &str, empty: bool) -> Error {
    let message = if empty {
        "may not be set by the XR: the allowlist is empty".to_string()
    } else {
        format!("{value:?} is not allowed")
    };
    refused(field, allowlist, message)
}

fn refused(field: &str, allowlist: &str, message: String) -> Error {
    Error::Refused {
        field: field.to_string(),
        allowlist: allowlist.to_string(),
        message,
    }
}

/// Whether `name` matches one of `patterns` (see [`glob_match`]).
pub fn matches_any(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| glob_match(p, name))
}

/// Go's `path.Match(pattern, name)`, ported line for line: `*` matches any
/// run of non-`/` bytes, `?` one non-`/` character, `[...]` and `[^...]` a
/// character class with `a-z` ranges, `\` escapes the next character.
///
/// A malformed pattern (an unclosed `[`, an empty class, a trailing `\`,
/// a range missing an end) is Go's `ErrBadPattern`; here it matches
/// nothing, so a broken allowlist entry admits nothing. Go reports the
/// error whatever the name, as does this port (`Err(BadPattern)` below).
///
/// Every chunk between stars is tried at each offset of the name at most
/// once, so the cost is at most the pattern's length times the name's.
/// Patterns come from the Composition input, which is trusted, and names
/// are bounded by the fields they come from.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    path_match(pattern.as_bytes(), name.as_bytes()).unwrap_or(false)
}

/// Go's `path.ErrBadPattern`.
#[derive(Debug, PartialEq, Eq)]
pub struct BadPattern;

/// Go's `path.Match` on bytes, with runes decoded as Go decodes them.
pub fn path_match(mut pattern: &[u8], mut name: &[u8]) -> Result<bool, BadPattern> {
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // A trailing * matches the rest of the name unless it has a /.
            return Ok(!name.contains(&b'/'));
        }
        let (t, ok, err) = match_chunk(chunk, name);
        if ok && (t.is_empty() || !pattern.is_empty()) {
            name = t;
            continue;
        }
        if let Some(err) = err {
            return Err(err);
        }
        if star {
            // Look for a match skipping i+1 bytes; * cannot skip a /.
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                let (t, ok, err) = match_chunk(chunk, &name[i + 1..]);
                if ok {
                    if pattern.is_empty() && !t.is_empty() {
                        i += 1;
                        continue;
                    }
                    name = t;
                    continue 'pattern;
                }
                if let Some(err) = err {
                    return Err(err);
                }
                i += 1;
            }
        }
        // Before answering false, check the rest of the pattern is valid.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            if let (_, _, Some(err)) = match_chunk(chunk, b"") {
                return Err(err);
            }
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Leading stars, then the chunk up to the next star outside a class.
fn scan_chunk(mut pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while let [b'*', rest @ ..] = pattern {
        pattern = rest;
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => return (star, &pattern[..i], &pattern[i..]),
            _ => {}
        }
        i += 1;
    }
    (star, pattern, &[])
}

/// Go's `utf8.DecodeRune`: the rune at the start and its length, or
/// U+FFFD and 1 for a byte that does not start a valid encoding.
fn decode_rune(s: &[u8]) -> (char, usize) {
    for len in 1..=s.len().min(4) {
        if let Ok(text) = std::str::from_utf8(&s[..len])
            && let Some(c) = text.chars().next()
        {
            return (c, len);
        }
    }
    (char::REPLACEMENT_CHARACTER, 1)
}

/// Go's `matchChunk`: whether `chunk` (no stars) matches a prefix of `s`,
/// and the rest. After a mismatch it keeps reading the chunk, so a bad
/// pattern is reported whatever the name.
fn match_chunk<'a>(mut chunk: &[u8], mut s: &'a [u8]) -> (&'a [u8], bool, Option<BadPattern>) {
    let mut failed = false;
    while let Some(&first) = chunk.first() {
        failed = failed || s.is_empty();
        match first {
            b'[' => {
                let mut r = '\0';
                if !failed {
                    let (c, n) = decode_rune(s);
                    r = c;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&b'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let (mut matched, mut ranges) = (false, 0);
                loop {
                    if chunk.first() == Some(&b']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let lo;
                    (lo, chunk) = match get_esc(chunk) {
                        Ok(found) => found,
                        Err(err) => return (&[], false, Some(err)),
                    };
                    let mut hi = lo;
                    if chunk[0] == b'-' {
                        (hi, chunk) = match get_esc(&chunk[1..]) {
                            Ok(found) => found,
                            Err(err) => return (&[], false, Some(err)),
                        };
                    }
                    matched = matched || lo <= r && r <= hi;
                    ranges += 1;
                }
                failed = failed || matched == negated;
            }
            b'?' => {
                if !failed {
                    failed = s[0] == b'/';
                    let (_, n) = decode_rune(s);
                    s = &s[n..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                if first == b'\\' {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return (&[], false, Some(BadPattern));
                    }
                }
                if !failed {
                    failed = chunk[0] != s[0];
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    if failed {
        (&[], false, None)
    } else {
        (s, true, None)
    }
}

/// Go's `getEsc`: one possibly escaped character of a class, which must
/// not be the class's end and must be followed by something.
fn get_esc(mut chunk: &[u8]) -> Result<(char, &[u8]), BadPattern> {
    if chunk.is_empty() || chunk[0] == b'-' || chunk[0] == b']' {
        return Err(BadPattern);
    }
    if chunk[0] == b'\\' {
        chunk = &chunk[1..];
        if chunk.is_empty() {
            return Err(BadPattern);
        }
    }
    let (r, n) = decode_rune(chunk);
    let invalid = r == char::REPLACEMENT_CHARACTER && n == 1;
    let rest = &chunk[n..];
    if invalid || rest.is_empty() {
        return Err(BadPattern);
    }
    Ok((r, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdk::request::decode;
    use serde_json::json;

    #[test]
    fn globs_follow_go_path_match() {
        let cases = [
            ("upbound/*", "upbound/provider-aws-s3", true),
            ("upbound/*", "upbound/sub/provider", false),
            ("*/*", "upbound/provider", true),
            ("upbound/provider-aws-*", "upbound/provider-aws-s3", true),
            ("upbound/provider-aws-*", "upbound/provider-gcp", false),
            ("upbound/provider-aws-s?", "upbound/provider-aws-s3", true),
            ("upbound/provider-aws-s?", "upbound/provider-aws-s34", false),
            ("*", "upbound/x", false),
            ("*", "", true),
            ("exact/name", "exact/name", true),
            ("exact/name", "exact/names", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(glob_match(pattern, name), expected, "{pattern} ~ {name}");
        }
    }

    #[test]
    fn glob_classes_escapes_and_bad_patterns() {
        let cases = [
            ("team-[ab]/*", "team-a/x", Ok(true)),
            ("team-[ab]/*", "team-c/x", Ok(false)),
            ("team-[^ab]", "team-c", Ok(true)),
            ("team-[a-c]", "team-b", Ok(true)),
            ("team-[a-c]", "team-d", Ok(false)),
            ("[é]", "é", Ok(true)),
            ("?", "é", Ok(true)),
            ("a\\*b", "a*b", Ok(true)),
            ("a\\*b", "axb", Ok(false)),
            ("[*]", "*", Ok(true)),
            ("[/]", "/", Ok(true)),
            ("[", "a", Err(BadPattern)),
            ("[]", "a", Err(BadPattern)),
            ("[a-]", "a", Err(BadPattern)),
            ("a\\", "a", Err(BadPattern)),
            // Go reports a bad pattern even after a mismatch.
            ("x[", "a", Err(BadPattern)),
            ("*x[", "a", Err(BadPattern)),
            // ... but not past a trailing star that already matched.
            ("a*", "abc", Ok(true)),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(
                path_match(pattern.as_bytes(), name.as_bytes()),
                want,
                "{pattern} ~ {name}"
            );
            assert_eq!(glob_match(pattern, name), want == Ok(true));
        }
    }

    fn spec(registry: serde_json::Value, runtime: Option<&str>) -> XrSpec {
        decode(json!({
            "registry": registry,
            "packages": [{"kind": "Provider", "repository": "upbound/provider-aws-s3", "version": "v1", "runtimeConfigName": runtime}]
        }))
        .expect("spec")
    }

    #[test]
    fn registries_and_runtime_configs() {
        let input: Input = decode(json!({
            "allowedRegistries": [{"accountId": "111122223333", "region": "*"}, {"accountId": "*", "region": "eu-west-2"}],
            "allowedRuntimeConfigs": ["team-a-*"]
        }))
        .expect("input");
        let policy = Policy::new(&input, Origin::Request);
        let ok = |account: &str, region: &str, runtime: Option<&str>| {
            policy.check_spec(&spec(
                json!({"accountId": account, "region": region}),
                runtime,
            ))
        };
        assert!(ok("111122223333", "us-east-1", None).is_ok());
        assert!(ok("999999999999", "eu-west-2", Some("team-a-debug")).is_ok());
        let cases = [
            (
                ok("999999999999", "us-east-1", None),
                "spec.registry",
                "allowedRegistries",
            ),
            (
                ok("111122223333", "us-east-1", Some("admin")),
                "spec.packages[0].runtimeConfigName",
                "allowedRuntimeConfigs",
            ),
        ];
        for (result, field, list) in cases {
            match result {
                Err(Error::Refused {
                    field: f,
                    allowlist,
                    ..
                }) => assert_eq!((f.as_str(), allowlist.as_str()), (field, list)),
                other => panic!("{field}: {other:?}"),
            }
        }
        // Bootstrap runs the platform's own XR: the allowlists do not apply.
        let platform = Policy::new(&input, Origin::Platform);
        assert!(
            platform
                .check_spec(&spec(
                    json!({"accountId": "999999999999", "region": "us-east-1"}),
                    Some("admin")
                ))
                .is_ok()
        );
    }

    #[test]
    fn an_empty_allowlist_refuses_any_value() {
        let input = Input::default();
        let policy = Policy::new(&input, Origin::Request);
        let err = policy
            .check_spec(&spec(
                json!({"accountId": "111122223333", "region": "us-east-1"}),
                Some("rc"),
            ))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "refused at spec.packages[0].runtimeConfigName: may not be set by the XR: the allowlist is empty (see the Composition input's allowedRuntimeConfigs)"
        );
        // Without allowedRegistries any registry may be named.
        assert!(
            policy
                .check_spec(&spec(
                    json!({"accountId": "111122223333", "region": "us-east-1"}),
                    None
                ))
                .is_ok()
        );
        // `allowedRegistries: []` is the same as missing (README, CRD): any
        // registry, and no list that would let the status stand in.
        let empty: Input = decode(json!({"allowedRegistries": []})).expect("input");
        assert_eq!(empty.allowed_registries, None);
        assert!(
            Policy::new(&empty, Origin::Request)
                .check_spec(&spec(
                    json!({"accountId": "111122223333", "region": "us-east-1"}),
                    None
                ))
                .is_ok()
        );
    }

    #[test]
    fn identities_within_the_list_or_the_default() {
        use Identity::{Irsa, PodIdentity};
        let listed: Input =
            decode(json!({"iam": {"allowedIdentities": ["PodIdentity"]}})).expect("input");
        let both: Input =
            decode(json!({"iam": {"allowedIdentities": ["IRSA", "PodIdentity"]}})).expect("input");
        let unlisted = Input::default();
        // (input, asked, default, allowed)
        let cases = [
            (&unlisted, Irsa, Irsa, true),
            (&unlisted, PodIdentity, Irsa, false),
            (&unlisted, Irsa, PodIdentity, false),
            (&listed, PodIdentity, Irsa, true),
            (&listed, Irsa, Irsa, false),
            (&both, Irsa, PodIdentity, true),
            (&both, PodIdentity, Irsa, true),
        ];
        for (input, asked, default, allowed) in cases {
            let result = Policy::new(input, Origin::Request).check_identity(asked, default);
            match result {
                Ok(()) => assert!(allowed, "{asked} over {default} passed"),
                Err(Error::Refused {
                    field, allowlist, ..
                }) => {
                    assert!(!allowed, "{asked} over {default} refused");
                    assert_eq!(
                        (field.as_str(), allowlist.as_str()),
                        ("spec.iam.identity", "iam.allowedIdentities")
                    );
                }
                Err(other) => panic!("{other:?}"),
            }
        }
        let err = Policy::new(&unlisted, Origin::Request)
            .check_identity(PodIdentity, Irsa)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "refused at spec.iam.identity: \"PodIdentity\" is not allowed (allowed: IRSA) (see the Composition input's iam.allowedIdentities)"
        );
        assert!(
            Policy::new(&listed, Origin::Platform)
                .check_identity(Irsa, Irsa)
                .is_ok()
        );
    }

    #[test]
    fn service_accounts_match_both_globs() {
        let input: Input = decode(json!({"iam": {"allowedServiceAccounts": [{"namespace": "crossplane-system", "name": "provider-aws-*"}]}})).expect("input");
        let policy = Policy::new(&input, Origin::Request);
        let sa = |ns: &str, name: &str| ServiceAccount {
            namespace: ns.into(),
            name: name.into(),
        };
        assert!(
            policy
                .check_service_accounts(&[sa("crossplane-system", "provider-aws-s3")])
                .is_ok()
        );
        let err = policy
            .check_service_accounts(&[
                sa("crossplane-system", "provider-aws-s3"),
                sa("kube-system", "provider-aws-s3"),
            ])
            .unwrap_err();
        assert!(
            matches!(&err, Error::Refused { field, allowlist, .. } if field == "spec.iam.serviceAccounts[1]" && allowlist == "iam.allowedServiceAccounts"),
            "{err}"
        );
        assert!(
            err.to_string().contains("\"kube-system/provider-aws-s3\""),
            "{err}"
        );
    }
}
