//! What the input sets on every package object beyond its reference, as a
//! Crossplane user would on a package (`spec.packagePullPolicy`,
//! `spec.commonLabels`, `spec.ignoreCrossplaneConstraints`). Platform
//! policy: the XR cannot set them. Each is composed only when the input
//! sets it, so Crossplane's defaults apply otherwise.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use crate::names::{is_label_key, is_label_value};

/// `commonLabels` entries at most.
pub const MAX_COMMON_LABELS: usize = 32;

/// Label prefixes Crossplane (or this function) writes itself: a common
/// label under one would fight them.
const RESERVED_PREFIXES: [&str; 3] = ["crossplane.io/", "pkg.crossplane.io/", "kubernetes.io/"];

/// `packagePullPolicy`, as Kubernetes spells image pull policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum PullPolicy {
    IfNotPresent,
    Always,
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Always => "Always",
            PullPolicy::Never => "Never",
        }
    }
}

/// `commonLabels`: labels Crossplane puts on every object a package
/// installs (its revisions, CRDs, deployments). Keys and values are
/// Kubernetes label grammar; at most [`MAX_COMMON_LABELS`]; no key under a
/// prefix Crossplane writes itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommonLabels(BTreeMap<String, String>);

impl CommonLabels {
    pub fn new(labels: BTreeMap<String, String>) -> Result<Self, String> {
        if labels.len() > MAX_COMMON_LABELS {
            return Err(format!(
                "at most {MAX_COMMON_LABELS} labels, got {}",
                labels.len()
            ));
        }
        for (key, value) in &labels {
            let quoted = |text: &str| format!("{:?}", text.chars().take(64).collect::<String>());
            if !is_label_key(key) {
                return Err(format!("{} is not a label key", quoted(key)));
            }
            if RESERVED_PREFIXES.iter().any(|p| key.starts_with(p)) {
                return Err(format!(
                    "{} is under a prefix Crossplane writes itself ({})",
                    quoted(key),
                    RESERVED_PREFIXES.join(", ")
                ));
            }
            if !is_label_value(value) {
                return Err(format!("the value of {} is not a label value", quoted(key)));
            }
        }
        Ok(Self(labels))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }
}

impl<'de> Deserialize<'de> for CommonLabels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let labels = BTreeMap::<String, String>::deserialize(d)?;
        CommonLabels::new(labels).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn common_labels_are_checked_as_read() {
        let cases = [
            (json!({"platform.example.org/team": "core"}), None),
            (json!({}), None),
            (json!({"Team": "core"}), None),
            (
                json!({"Example.org/team": "core"}),
                Some("is not a label key"),
            ),
            (json!({"team": "core team"}), Some("is not a label value")),
            (
                json!({"pkg.crossplane.io/package": "x"}),
                Some("prefix Crossplane writes"),
            ),
            (json!({"team": 1}), Some("invalid type")),
        ];
        for (labels, error) in cases {
            let read = serde_json::from_value::<CommonLabels>(labels.clone());
            match error {
                None => assert!(read.is_ok(), "{labels}: {read:?}"),
                Some(want) => {
                    let got = read.expect_err("refused").to_string();
                    assert!(got.contains(want), "{labels}: {got}");
                }
            }
        }
        let many: BTreeMap<String, String> = (0..=MAX_COMMON_LABELS)
            .map(|i| (format!("l{i}"), "v".to_string()))
            .collect();
        assert!(CommonLabels::new(many).is_err());
    }

    #[test]
    fn pull_policies_are_kubernetes_spelling() {
        for policy in ["IfNotPresent", "Always", "Never"] {
            let read: PullPolicy = serde_json::from_value(json!(policy)).expect("a policy");
            assert_eq!(read.as_str(), policy);
        }
        assert!(serde_json::from_value::<PullPolicy>(json!("always")).is_err());
    }
}
