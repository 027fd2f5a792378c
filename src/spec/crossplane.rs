//! `crossplaneVersion`: the Crossplane the platform runs, which decides how
//! constraints are read (see `version::Dialect`): Crossplane v2.0 to v2.2
//! check dependency constraints with Masterminds/semver v1.5.0, v2.3 with
//! v3.4.0, v2.4 on with v3.5.0. Unset, a version is chosen only if every
//! dialect accepts it, which is safe under any Crossplane v2.

use serde::{Deserialize, Deserializer};

use crate::version::Dialect;

/// Text of `crossplaneVersion` at most.
pub const MAX_CROSSPLANE_VERSION_LEN: usize = 16;

/// A Crossplane v2 minor (`v2.2`, `2.4`, `v2.3.4`) and its dialect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrossplaneVersion {
    pub text: String,
    pub dialect: Dialect,
}

impl CrossplaneVersion {
    pub fn parse(text: &str) -> Result<Self, String> {
        let refused = || {
            let shown: String = text.chars().take(MAX_CROSSPLANE_VERSION_LEN).collect();
            format!("must be a Crossplane v2 version such as v2.2 or v2.4, got {shown:?}")
        };
        if text.len() > MAX_CROSSPLANE_VERSION_LEN {
            return Err(refused());
        }
        let dialect = Dialect::for_crossplane(text).ok_or_else(refused)?;
        Ok(Self {
            text: text.to_string(),
            dialect,
        })
    }
}

impl<'de> Deserialize<'de> for CrossplaneVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        CrossplaneVersion::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The dialects constraints are read in: the one of `version`, or every
/// one when it is not known.
pub fn dialects(version: Option<&CrossplaneVersion>) -> Vec<Dialect> {
    match version {
        Some(version) => vec![version.dialect],
        None => Dialect::ALL.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_name_their_dialect() {
        let cases = [
            ("v2.2", Some(Dialect::V1_5)),
            ("2.3", Some(Dialect::V3_4)),
            ("v2.3.4", Some(Dialect::V3_4)),
            ("v2.4", Some(Dialect::V3_5)),
            ("v1.20", None),
            ("latest", None),
            ("v2.2.0.0.0.0.0.0.0", None),
        ];
        for (text, dialect) in cases {
            assert_eq!(
                CrossplaneVersion::parse(text).ok().map(|v| v.dialect),
                dialect,
                "{text}"
            );
        }
        assert_eq!(dialects(None), Dialect::ALL.to_vec());
    }
}
