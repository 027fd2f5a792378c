//! Safe-start activation, as Crossplane v2 has it: a provider that declares
//! the `safe-start` capability installs its managed resource definitions
//! (MRDs, named like CRDs: `<plural>.<group>`) `Inactive`, and a
//! ManagedResourceActivationPolicy (MRAP) activates the ones whose names
//! match its `spec.activate` entries (Go's `filepath.Match`), after which
//! Crossplane creates their CRDs. Activation is one-way: an active MRD
//! stays active when the policy goes.
//!
//! Here: what the input says about activation (`activation.enabled`,
//! `allowedActivations`), the grammar of an entry the XR may ask for in
//! `spec.packages[].activate` (an MRD name, or Crossplane's leading-`*`
//! pattern), and the bound an allowed glob puts on an entry.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::glob::glob_match;
use super::limits::MAX_ACTIVATION_LEN;
use crate::names::is_label;

/// `activation` in the input.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActivationInput {
    /// Whether the function composes a ManagedResourceActivationPolicy per
    /// XR. Off for platforms that activate definitions themselves (Helm's
    /// `provider.defaultActivations`, their own policies); the XR may then
    /// not ask for any.
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for ActivationInput {
    fn default() -> Self {
        Self { enabled: true }
    }
}

fn yes() -> bool {
    true
}

/// The definitions one `activate` entry stands for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Definitions {
    /// One MRD, by name: `buckets.s3.aws.upbound.io`.
    Named(String),
    /// Every MRD whose name ends with `suffix` (Crossplane's
    /// `*.s3.aws.upbound.io`; `*` alone, with an empty suffix, is every
    /// one). The suffix is empty or starts with `.`.
    Matching { suffix: String },
}

impl Definitions {
    /// Reads an entry; the error says what an entry may be.
    pub fn parse(text: &str) -> Result<Self, String> {
        let shape = "must be a managed resource definition name (like \
                     buckets.s3.aws.upbound.io) or a leading-* pattern (like \
                     *.s3.aws.upbound.io)";
        if text.len() > MAX_ACTIVATION_LEN {
            return Err(format!(
                "{shape}; it is longer than {MAX_ACTIVATION_LEN} characters"
            ));
        }
        match text.strip_prefix('*') {
            Some("") => Ok(Definitions::Matching {
                suffix: String::new(),
            }),
            Some(rest) => match rest.strip_prefix('.') {
                Some(domain) if is_subdomain(domain) => Ok(Definitions::Matching {
                    suffix: rest.to_string(),
                }),
                _ => Err(format!("{shape}, got {text:?}")),
            },
            None if is_subdomain(text) && text.contains('.') => {
                Ok(Definitions::Named(text.to_string()))
            }
            None => Err(format!("{shape}, got {text:?}")),
        }
    }

    /// The entry as `spec.activate` spells it.
    pub fn pattern(&self) -> String {
        match self {
            Definitions::Named(name) => name.clone(),
            Definitions::Matching { suffix } => format!("*{suffix}"),
        }
    }

    /// Whether the MRD `name` is one of these, as Crossplane matches it.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Definitions::Named(named) => named == name,
            Definitions::Matching { suffix } => name.len() > suffix.len() && name.ends_with(suffix),
        }
    }

    /// Whether every definition this entry stands for matches `allowed`, a
    /// glob of the input's `allowedActivations`. A name must match the
    /// glob; a pattern is within only `*` or a leading-`*` glob whose
    /// (literal) rest its own suffix ends with: `*.s3.aws.upbound.io` is
    /// within `*.aws.upbound.io`, and within nothing that could leave out
    /// one of the names it matches.
    pub fn within(&self, allowed: &str) -> bool {
        match self {
            Definitions::Named(name) => glob_match(allowed, name),
            Definitions::Matching { suffix } => allowed.strip_prefix('*').is_some_and(|rest| {
                !rest.contains(['*', '?', '[', '\\']) && suffix.ends_with(rest)
            }),
        }
    }
}

impl std::fmt::Display for Definitions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.pattern())
    }
}

/// A DNS-1123 subdomain: labels joined by `.`, at most 253 characters.
fn is_subdomain(text: &str) -> bool {
    (1..=MAX_ACTIVATION_LEN).contains(&text.len()) && text.split('.').all(is_label)
}

/// What activation the settings hold when the input enables it: the
/// definitions each listed package asks for, by repository.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Activation {
    /// The `metadata.name` of the XR's policy: one per XR, after its name.
    pub policy_name: String,
    pub requested: BTreeMap<String, Vec<Definitions>>,
}

impl Activation {
    /// Every entry asked for, package by package (repeats included).
    pub fn patterns(&self) -> impl Iterator<Item = String> + '_ {
        self.requested.values().flatten().map(Definitions::pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn entries_are_names_or_leading_star_patterns() {
        let named = |n: &str| Ok(Definitions::Named(n.to_string()));
        let matching = |s: &str| {
            Ok(Definitions::Matching {
                suffix: s.to_string(),
            })
        };
        let cases: Vec<(&str, Result<Definitions, ()>)> = vec![
            (
                "buckets.s3.aws.upbound.io",
                named("buckets.s3.aws.upbound.io"),
            ),
            (
                "roles.iam.aws.m.upbound.io",
                named("roles.iam.aws.m.upbound.io"),
            ),
            ("*.s3.aws.upbound.io", matching(".s3.aws.upbound.io")),
            ("*", matching("")),
            // No group: not a CRD name.
            ("buckets", Err(())),
            // Crossplane's filepath.Match would take these; the issue's
            // grammar (and every example Crossplane gives) does not.
            ("buckets.*.aws.upbound.io", Err(())),
            ("*buckets.s3.aws.upbound.io", Err(())),
            ("?uckets.s3.aws.upbound.io", Err(())),
            ("[b]uckets.s3.aws.upbound.io", Err(())),
            ("*.", Err(())),
            ("**.aws.upbound.io", Err(())),
            ("Buckets.s3.aws.upbound.io", Err(())),
            ("buckets..aws.upbound.io", Err(())),
            ("-buckets.s3.aws.upbound.io", Err(())),
            ("", Err(())),
        ];
        for (text, want) in cases {
            assert_eq!(Definitions::parse(text).map_err(|_| ()), want, "{text:?}");
        }
        let long = format!("{}.io", "a".repeat(MAX_ACTIVATION_LEN));
        let error = Definitions::parse(&long).unwrap_err();
        assert!(error.contains("longer than 253"), "{error}");
    }

    #[test]
    fn matching_follows_crossplane() {
        let bucket = "buckets.s3.aws.upbound.io";
        let cases = [
            ("buckets.s3.aws.upbound.io", bucket, true),
            (
                "buckets.s3.aws.upbound.io",
                "objects.s3.aws.upbound.io",
                false,
            ),
            ("*.s3.aws.upbound.io", bucket, true),
            ("*.aws.upbound.io", bucket, true),
            ("*.s3.aws.upbound.io", "buckets.s3.aws.m.upbound.io", false),
            ("*.s3.aws.upbound.io", "xs3.aws.upbound.io", false),
            ("*", bucket, true),
        ];
        for (entry, name, want) in cases {
            let definitions = Definitions::parse(entry).unwrap();
            assert_eq!(definitions.matches(name), want, "{entry} ~ {name}");
            // Go's filepath.Match (which Crossplane calls) and this project's
            // port of it agree with the simpler rule on these shapes.
            assert_eq!(glob_match(entry, name), want, "glob {entry} ~ {name}");
        }
    }

    #[test]
    fn an_entry_is_bounded_by_an_allowed_glob() {
        let cases = [
            ("buckets.s3.aws.upbound.io", "*.s3.aws.upbound.io", true),
            (
                "buckets.s3.aws.upbound.io",
                "buckets.s3.aws.upbound.io",
                true,
            ),
            ("buckets.s3.aws.upbound.io", "*.ec2.aws.upbound.io", false),
            (
                "buckets.s3.aws.upbound.io",
                "bucket?.s3.aws.upbound.io",
                true,
            ),
            ("*.s3.aws.upbound.io", "*.s3.aws.upbound.io", true),
            ("*.s3.aws.upbound.io", "*.aws.upbound.io", true),
            ("*.s3.aws.upbound.io", "*", true),
            ("*.aws.upbound.io", "*.s3.aws.upbound.io", false),
            // A glob that matches the pattern's text is not enough: `?`
            // matches the `*` character but not `buckets`.
            ("*.s3.aws.upbound.io", "?.s3.aws.upbound.io", false),
            ("*.s3.aws.upbound.io", "*.s3.aws.*.io", false),
            ("*.s3.aws.upbound.io", "buckets.s3.aws.upbound.io", false),
            ("*", "*.aws.upbound.io", false),
            ("*", "*", true),
        ];
        for (entry, allowed, want) in cases {
            let definitions = Definitions::parse(entry).unwrap();
            assert_eq!(
                definitions.within(allowed),
                want,
                "{entry} within {allowed}"
            );
        }
    }

    fn label() -> impl Strategy<Value = String> {
        "[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?"
    }

    fn name() -> impl Strategy<Value = String> {
        prop::collection::vec(label(), 2..5).prop_map(|labels| labels.join("."))
    }

    proptest! {
        /// Never a panic, and anything read back prints as it was written.
        #[test]
        fn parse_never_panics_and_round_trips(text in "\\PC{0,300}") {
            if let Ok(definitions) = Definitions::parse(&text) {
                prop_assert_eq!(definitions.pattern(), text);
            }
        }

        /// Sound bound: an entry within an allowed glob activates nothing
        /// the glob does not match.
        #[test]
        fn within_is_sound(
            entry in prop_oneof![name(), name().prop_map(|n| format!("*.{n}")), Just("*".to_string())],
            allowed in prop_oneof![name(), name().prop_map(|n| format!("*.{n}")), Just("*".to_string())],
            prefix in label(),
            candidates in prop::collection::vec(name(), 1..8),
        ) {
            let definitions = Definitions::parse(&entry).unwrap();
            if definitions.within(&allowed) {
                let mut names = candidates;
                if let Definitions::Matching { suffix } = &definitions {
                    names.push(format!("{prefix}{suffix}"));
                }
                for name in names.iter().filter(|n| definitions.matches(n)) {
                    prop_assert!(glob_match(&allowed, name), "{} within {} but {} escapes", entry, allowed, name);
                }
            }
        }
    }
}
