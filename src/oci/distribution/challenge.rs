//! The `WWW-Authenticate` header a registry answers an unauthenticated
//! request with, parsed in one pass.

/// A parsed `WWW-Authenticate` header: a scheme and `key="value"` pairs.
#[derive(Debug, PartialEq, Eq)]
pub struct Challenge {
    /// Lower-cased.
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// Parses one challenge in a single pass; `None` when there is no scheme.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, mut rest) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.is_empty() {
            return None;
        }
        let mut params = Vec::new();
        loop {
            rest = rest.trim_start_matches([' ', ',']);
            let Some((key, after)) = rest.split_once('=') else {
                break;
            };
            let key = key.trim().to_ascii_lowercase();
            let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
                let mut value = String::new();
                let mut escaped = false;
                let mut end = quoted.len();
                for (i, c) in quoted.char_indices() {
                    match (escaped, c) {
                        (true, c) => {
                            value.push(c);
                            escaped = false;
                        }
                        (false, '\\') => escaped = true,
                        (false, '"') => {
                            end = i + 1;
                            break;
                        }
                        (false, c) => value.push(c),
                    }
                }
                (value, &quoted[end.min(quoted.len())..])
            } else {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_string(), &after[end..])
            };
            params.push((key, value));
            rest = next;
        }
        Some(Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params,
        })
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn challenges() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull""#,
        )
        .expect("parses");
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://auth.example.com/token"));
        assert_eq!(c.param("service"), Some("registry.example.com"));
        assert_eq!(c.param("scope"), Some("repository:a/b:pull"));

        let c = Challenge::parse(r#"Basic realm="My \"Registry\"""#).expect("parses");
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.param("realm"), Some(r#"My "Registry""#));

        let c = Challenge::parse("Bearer realm=https://x/token, service=x").expect("parses");
        assert_eq!(c.param("realm"), Some("https://x/token"));
        assert_eq!(c.param("service"), Some("x"));

        assert_eq!(Challenge::parse("   "), None);
    }

    proptest! {
        #[test]
        fn challenge_parsing_never_panics(header in ".{0,300}") {
            let _ = Challenge::parse(&header);
        }

        #[test]
        fn quoted_values_round_trip(value in "[ -~]{0,40}") {
            let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
            let header = format!("Bearer realm=\"{escaped}\",service=\"s\"");
            let c = Challenge::parse(&header).expect("parses");
            prop_assert_eq!(c.param("realm"), Some(value.as_str()));
            prop_assert_eq!(c.param("service"), Some("s"));
        }
    }
}
