//! Kubernetes names built from user data: composition resource names (they
//! land in the `crossplane.io/composition-resource-name` annotation and in
//! label values), ImageConfig names and the IAM managed resources' names.
//!
//! [`object_name`] is the one way to build them. Its result is always a
//! DNS-1123 label (lowercase letters, digits and `-`, starting and ending
//! with a letter or digit, 1 to 63 characters), depends on nothing but its
//! arguments (so it is stable across reconciles and releases), and is the
//! plain `<prefix>-<part>` whenever that is a valid label and nothing about
//! the part had to be dropped or guessed. Otherwise (too long, characters
//! dropped or folded together) it is cut and ends in `-` and the first
//! [`HASH_LEN`] hex digits of the SHA-256 of the full input, so distinct
//! inputs keep distinct names.
//!
//! Package objects' own `metadata.name`s follow Crossplane's
//! `xpkg.ToDNSLabel` byte for byte instead ([`dns_label`]).
//!
//! The grammar checks for names that come from users live here too:
//! [`is_label`], [`is_repository_name`], [`is_digest`],
//! [`is_role_name_char`]. Composition resource names are built beside what
//! they name, from their prefixes (`crate::compose`).

use sha2::{Digest, Sha256};

/// A DNS-1123 label's maximum length.
pub const MAX_LABEL_LEN: usize = 63;
/// Hex digits of the hash suffix (40 bits).
pub const HASH_LEN: usize = 10;

/// What kind of text a name is built from, which decides what may change on
/// the way to a label without a hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grammar {
    /// Already a Kubernetes name: `[a-z0-9-]` is kept; anything else
    /// (upper case, `.`, `_`) is folded and the name gets a hash.
    Label,
    /// An AWS IAM name (`[A-Za-z0-9+=,.@_-]`). IAM names are unique
    /// regardless of case, so upper case becomes lower case freely; `-` is
    /// kept; `+=,.@_` are folded into `-` with a hash.
    Iam,
    /// A registry path prefix such as `xpkg.upbound.io/`: one trailing `/`
    /// is dropped and each `.` becomes `-`, freely, so
    /// `xpkg.upbound.io/` names `...-xpkg-upbound-io`. A `-`, `:`, another
    /// `/`, upper case or a missing trailing `/` give a hash.
    PathPrefix,
}

/// `<prefix>-<part>` as a DNS label (see the module documentation). An
/// empty `prefix` gives the part alone; an empty or all-punctuation part
/// gives `<prefix>-<hash>`. `prefix` should itself be a label.
pub fn object_name(prefix: &str, part: &str, source: Grammar) -> String {
    // Already a label's characters, unfolded and short enough: nothing to
    // clean or cut (the usual case, such as a package resource name).
    let plain = |text: &str| {
        !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !text.starts_with('-')
            && !text.ends_with('-')
    };
    if source != Grammar::PathPrefix
        && plain(prefix)
        && plain(part)
        && prefix.len() + 1 + part.len() <= MAX_LABEL_LEN
    {
        // Joined by hand: this runs for every package of every compose,
        // and `format!` costs several times a plain copy.
        return [prefix, part].join("-");
    }
    let (clean_prefix, prefix_lossy) = clean(prefix, Grammar::Label);
    let (clean_part, part_lossy) = clean(part, source);
    let mut name = clean_prefix;
    if !name.is_empty() && !clean_part.is_empty() {
        name.push('-');
    }
    name.push_str(&clean_part);
    if !(prefix_lossy || part_lossy || clean_part.is_empty()) && name.len() <= MAX_LABEL_LEN {
        return name;
    }
    let hash = hash(&[prefix, part]);
    // ASCII only from here, so byte cuts are character cuts.
    name.truncate(MAX_LABEL_LEN - 1 - HASH_LEN);
    let kept = name.trim_end_matches('-');
    if kept.is_empty() {
        return hash;
    }
    format!("{kept}-{hash}")
}

/// `text` if it has at most `max` bytes, else its first characters, `-` and
/// a hash of all of it, `max` bytes at most: for names outside Kubernetes
/// (an IAM role named after an XR) that must stay distinct when cut.
/// `max` must exceed [`HASH_LEN`] + 1 for the result to keep any of `text`.
pub fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let hash = hash(&[text]);
    let keep = max.saturating_sub(HASH_LEN + 1);
    let mut cut = keep.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let kept = text[..cut].trim_end_matches(['-', '.', '_']);
    if kept.is_empty() {
        return hash[..HASH_LEN.min(max)].to_string();
    }
    format!("{kept}-{hash}")
}

/// Whether `name` is a DNS-1123 label.
pub fn is_label(name: &str) -> bool {
    (1..=MAX_LABEL_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// A Kubernetes label key: an optional DNS subdomain prefix (at most 253
/// characters) and `/`, then a name of at most 63 characters of
/// alphanumerics, `-`, `_` and `.`, starting and ending alphanumeric.
pub fn is_label_key(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let subdomain = |p: &str| (1..=253).contains(&p.len()) && p.split('.').all(is_label);
    prefix.is_none_or(subdomain) && !name.is_empty() && is_label_value(name)
}

/// A Kubernetes label value: at most 63 characters of alphanumerics, `-`,
/// `_` and `.`, starting and ending alphanumeric (or empty).
pub fn is_label_value(value: &str) -> bool {
    let edge = |c: Option<char>| c.is_none_or(|c| c.is_ascii_alphanumeric());
    value.len() <= MAX_LABEL_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && edge(value.chars().next())
        && edge(value.chars().last())
}

/// The first [`HASH_LEN`] hex digits of SHA-256 over the parts, each
/// followed by a NUL so that part boundaries count.
pub fn hash(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(HASH_LEN);
    for byte in digest.iter().take(HASH_LEN.div_ceil(2)) {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex.truncate(HASH_LEN);
    hex
}

/// The label characters of `text` under `source`'s rules, without leading
/// or trailing `-`, and whether anything was dropped or folded.
fn clean(text: &str, source: Grammar) -> (String, bool) {
    let mut lossy = false;
    let body = match source {
        Grammar::PathPrefix => match text.strip_suffix('/') {
            Some(body) => body,
            None => {
                lossy = true;
                text
            }
        },
        Grammar::Label | Grammar::Iam => text,
    };
    let mut out = String::with_capacity(body.len().min(4 * MAX_LABEL_LEN));
    for c in body.chars() {
        let mapped = match c {
            'a'..='z' | '0'..='9' => c,
            'A'..='Z' if source == Grammar::Iam => c.to_ascii_lowercase(),
            '-' if source != Grammar::PathPrefix => '-',
            '.' if source == Grammar::PathPrefix => '-',
            _ => {
                lossy = true;
                if c.is_ascii_punctuation() || c == ' ' {
                    '-'
                } else if c.is_ascii_uppercase() {
                    c.to_ascii_lowercase()
                } else {
                    continue;
                }
            }
        };
        out.push(mapped);
    }
    let trimmed = out.trim_matches('-');
    if trimmed.len() != out.len() {
        lossy = true;
        out = trimmed.to_string();
    }
    (out, lossy)
}

/// A digest as registries write it and go-containerregistry's `NewHash`
/// accepts it: `sha256:`, then exactly 64 lowercase hex digits, nothing
/// around them.
pub fn is_digest(text: &str) -> bool {
    text.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// ECR's repository name grammar: lowercase path components of alphanumerics
/// separated by `.`, `_` or `-`, joined with `/`, 2 to 256 characters.
pub fn is_repository_name(name: &str) -> bool {
    (2..=256).contains(&name.len())
        && name.split('/').all(|component| {
            !component.is_empty()
                && component.split(['.', '_', '-']).all(|run| {
                    !run.is_empty()
                        && run
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                })
        })
}

/// The name Crossplane's package manager gives a dependency it installs
/// (`xpkg.ToDNSLabel` of the repository path, in crossplane/crossplane
/// `internal/xpkg/name.go`): lowercase letters and digits kept, `.`, `/`,
/// `:` and `-` turned into `-` except at the very start, end or 63rd byte,
/// reading stops at byte 62, dashes trimmed. Using the same name means
/// Crossplane's own resolver finds our package instead of installing a
/// duplicate, so this must stay byte-identical to Crossplane's, quirks
/// included: Go's `for i := range s` visits the byte offsets where
/// characters start, so a multi-byte character can step over offset 62 and
/// the result can then exceed 63 bytes. Such a name is not a DNS label and
/// the install graph refuses it; names for anything else come from
/// [`object_name`].
pub fn dns_label(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(bytes.len().min(63));
    for (i, _) in path.char_indices() {
        let b = bytes[i];
        if b.is_ascii_lowercase() || b.is_ascii_digit() {
            out.push(char::from(b));
        }
        if matches!(b, b'.' | b'/' | b':' | b'-') && i != 0 && i != 62 && i != bytes.len() - 1 {
            out.push('-');
        }
        if i == 62 {
            break;
        }
    }
    out.trim_matches('-').to_string()
}

/// The repository part of an upstream path: everything after the registry
/// host, as go-containerregistry's `RepositoryStr` gives it.
pub fn repository_path(upstream: &str) -> &str {
    match upstream.split_once('/') {
        Some((host, rest)) if host.contains('.') || host.contains(':') || host == "localhost" => {
            rest
        }
        _ => upstream,
    }
}

/// A character IAM allows in a role name.
pub fn is_role_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn digests() {
        const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        assert!(is_digest(A));
        for bad in ["sha256:AA", "sha256:", "sha512:aa", A.trim_end_matches('a')] {
            assert!(!is_digest(bad), "{bad}");
        }
    }

    #[test]
    fn valid_short_names_are_kept() {
        let cases = [
            (
                "iam-attachment-node",
                "eks-nodes",
                Grammar::Iam,
                "iam-attachment-node-eks-nodes",
            ),
            (
                "iam-attachment-node",
                "EKS-Nodes",
                Grammar::Iam,
                "iam-attachment-node-eks-nodes",
            ),
            (
                "image-config",
                "xpkg.upbound.io/",
                Grammar::PathPrefix,
                "image-config-xpkg-upbound-io",
            ),
            (
                "ecr-mirror",
                "xpkg.crossplane.io/",
                Grammar::PathPrefix,
                "ecr-mirror-xpkg-crossplane-io",
            ),
            (
                "package",
                "upbound-provider-family-aws",
                Grammar::Label,
                "package-upbound-provider-family-aws",
            ),
            ("", "demo-ecr-pull", Grammar::Iam, "demo-ecr-pull"),
            ("", "Team.Pull", Grammar::Label, "team-pull-"),
        ];
        for (prefix, part, source, name) in cases {
            let got = object_name(prefix, part, source);
            if name.ends_with('-') {
                assert!(
                    got.starts_with(name) && got.len() == name.len() + HASH_LEN,
                    "{part}: {got}"
                );
            } else {
                assert_eq!(got, name, "{part}");
            }
            assert!(is_label(&got), "{got}");
        }
    }

    #[test]
    fn lossy_or_long_names_get_a_hash() {
        let cases = [
            ("image-config", "xpkg.upbound.io", Grammar::PathPrefix),
            (
                "image-config",
                "xpkg.upbound.io/upbound/",
                Grammar::PathPrefix,
            ),
            (
                "image-config",
                "registry.example-corp.com/",
                Grammar::PathPrefix,
            ),
            ("image-config", "localhost:5000/", Grammar::PathPrefix),
            ("iam-attachment-node", "eks.nodes", Grammar::Iam),
            ("iam-attachment-node", "eks_nodes", Grammar::Iam),
            ("iam-attachment-node", "", Grammar::Iam),
            ("iam-attachment-node", "+=,", Grammar::Iam),
            ("package", &"a".repeat(56), Grammar::Label),
            ("", &"a".repeat(64), Grammar::Iam),
            ("", "---", Grammar::Iam),
        ];
        for (prefix, part, source) in cases {
            let got = object_name(prefix, part, source);
            assert!(is_label(&got), "{part}: {got}");
            let hash = hash(&[prefix, part]);
            assert!(got.ends_with(&hash), "{part}: {got}");
            assert!(got.starts_with(prefix), "{part}: {got}");
        }
        // The names that differ only where a hash was added stay apart.
        assert_ne!(
            object_name("image-config", "xpkg.upbound.io", Grammar::PathPrefix),
            object_name("image-config", "xpkg.upbound.io/", Grammar::PathPrefix)
        );
        assert_ne!(
            object_name("iam-attachment-node", "eks.nodes", Grammar::Iam),
            object_name("iam-attachment-node", "eks-nodes", Grammar::Iam)
        );
        assert_eq!(
            object_name("package", &"a".repeat(55), Grammar::Label).len(),
            63
        );
        assert_eq!(
            object_name("package", &"a".repeat(56), Grammar::Label).len(),
            63
        );
    }

    #[test]
    fn shortening() {
        assert_eq!(shorten("demo", 55), "demo");
        let long = "x".repeat(80);
        let cut = shorten(&long, 55);
        assert_eq!(cut.len(), 55);
        assert!(cut.ends_with(&hash(&[&long])));
        assert_ne!(
            shorten(&format!("{long}a"), 55),
            shorten(&format!("{long}b"), 55)
        );
        assert_eq!(shorten("ééééé", 4).len(), 4);
        assert!(shorten(&"é".repeat(40), 20).len() <= 20);
    }

    fn sources() -> impl Strategy<Value = Grammar> {
        prop_oneof![
            Just(Grammar::Label),
            Just(Grammar::Iam),
            Just(Grammar::PathPrefix)
        ]
    }

    #[test]
    fn label_keys_and_values() {
        let keys = [
            ("team", true),
            ("platform.example.org/team", true),
            ("a.b-c/x_y.z", true),
            ("", false),
            ("/team", false),
            ("Platform.example.org/team", false),
            ("example.org/", false),
            ("example.org/-team", false),
            ("a/b/c", false),
            (&*"x".repeat(64), false),
            (&*format!("{}/team", "a".repeat(254)), false),
        ];
        for (key, ok) in keys {
            assert_eq!(is_label_key(key), ok, "{key:?}");
        }
        let values = [
            ("", true),
            ("v2.2.0", true),
            ("A_b-c.d", true),
            ("-a", false),
            ("a.", false),
            ("a b", false),
            ("é", false),
            (&*"x".repeat(64), false),
        ];
        for (value, ok) in values {
            assert_eq!(is_label_value(value), ok, "{value:?}");
        }
    }

    proptest! {
        #[test]
        fn label_checks_never_panic_and_agree_on_names(text in "\\PC{0,80}") {
            let _ = is_label_key(&text);
            if is_label_value(&text) && !text.is_empty() {
                prop_assert!(is_label_key(&text));
            }
        }
    }

    proptest! {
        #[test]
        fn always_a_label(prefix in "([a-z]{1,12}(-[a-z0-9]{1,8}){0,2})?", part in ".{0,300}", source in sources()) {
            let name = object_name(&prefix, &part, source);
            prop_assert!(is_label(&name), "{:?}", name);
            prop_assert_eq!(&name, &object_name(&prefix, &part, source));
            if !prefix.is_empty() {
                prop_assert!(name.starts_with(&prefix), "{:?}", name);
            }
        }

        /// Repository- and path-like inputs (the characters ECR names,
        /// hosts and IAM names use) never share a name.
        #[test]
        fn distinct_inputs_distinct_names(
            parts in proptest::collection::vec("[a-zA-Z0-9][a-zA-Z0-9._/:+=,@-]{0,90}", 1..60),
            source in sources(),
        ) {
            let mut seen: BTreeMap<String, String> = BTreeMap::new();
            for part in parts {
                let name = object_name("package", &part, source);
                if let Some(other) = seen.insert(name.clone(), part.clone()) {
                    // IAM names differ only in case when they are one role.
                    let same = source == Grammar::Iam && other.eq_ignore_ascii_case(&part);
                    prop_assert!(other == part || same, "{:?} and {:?} -> {:?}", other, part, name);
                }
            }
        }

        /// Folding only ever maps strings that differ in a way the source
        /// says does not matter: near-identical inputs stay apart.
        #[test]
        fn separators_are_not_confused(
            words in proptest::collection::vec("[a-z0-9]{1,6}", 2..6),
            seps in proptest::collection::vec(prop_oneof![Just('-'), Just('.'), Just('/'), Just('_')], 5),
            source in sources(),
        ) {
            let join = |sep_of: &dyn Fn(usize) -> char| {
                let mut text = words[0].clone();
                for (i, w) in words[1..].iter().enumerate() {
                    text.push(sep_of(i));
                    text.push_str(w);
                }
                text
            };
            let a = join(&|i| seps[i]);
            let b = join(&|i| if seps[i] == '-' { '.' } else { '-' });
            prop_assert_ne!(object_name("image-config", &a, source), object_name("image-config", &b, source));
        }
    }

    #[test]
    fn dns_labels_match_crossplane() {
        let a64 = "a".repeat(64);
        let a63 = "a".repeat(63);
        let a62 = "a".repeat(62);
        let a61 = "a".repeat(61);
        let tail = "b".repeat(20);
        let cases: Vec<(String, String)> = [
            ("upbound/provider-family-aws", "upbound-provider-family-aws"),
            ("upbound/provider-aws-s3", "upbound-provider-aws-s3"),
            (
                "crossplane-contrib/function-patch-and-transform",
                "crossplane-contrib-function-patch-and-transform",
            ),
            ("Upbound/Provider", "pbound-rovider"),
            ("/leading/slash/", "leading-slash"),
            ("a.b:c_d", "a-b-cd"),
            (
                "crossplane-contrib/provider-upjet-aws-with-a-very-long-name-that-goes-past-the-limit",
                "crossplane-contrib-provider-upjet-aws-with-a-very-long-name-tha",
            ),
            ("", ""),
            ("é/provider-aws", "provider-aws"),
            ("a//b", "a--b"),
            ("a-", "a"),
            ("-", ""),
            ("a/-/b", "a---b"),
            ("mirror/upbound/provider_x.y", "mirror-upbound-providerx-y"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .chain([
            (format!("{a64}/b"), a63.clone()),
            (format!("{a62}/bc"), a62.clone()),
            (format!("{a61}/bcd"), format!("{a61}-b")),
            // A two-byte character over offset 62: Go reads on.
            (format!("{a61}é{tail}"), format!("{a61}{tail}")),
        ])
        .collect();
        for (path, label) in cases {
            assert_eq!(dns_label(&path), label, "{path}");
        }
    }

    #[test]
    fn repository_paths_drop_the_host() {
        assert_eq!(
            repository_path("xpkg.upbound.io/upbound/provider-family-aws"),
            "upbound/provider-family-aws"
        );
        assert_eq!(repository_path("localhost:5000/a/b"), "a/b");
        assert_eq!(
            repository_path("upbound/provider-family-aws"),
            "upbound/provider-family-aws"
        );
    }
}
