//! Crossplane's own signature verification of the input's `verify`
//! authorities (`verify.composeImageConfig`), for a Crossplane run with
//! `--enable-signature-verification` (alpha): a `v1` Secret per public key
//! in Crossplane's namespace, and ImageConfigs with `spec.verification`.
//!
//! Crossplane (v2.2 `internal/xpkg`, v2.4 crossplane-runtime `pkg/xpkg`)
//! asks for the verification ImageConfig of the package's *resolved*
//! reference, after any rewrite: the ECR path `<registry host>/<repository>`
//! with `:<tag>` or `@<digest>`, under `Rewrite` and `Skip` alike. Of the
//! ImageConfigs with a verification, it takes the one with the longest
//! matching prefix, only that one, and accepts a signature by any of its
//! authorities. So the ImageConfigs are one per prefix, each listing every
//! authority that may cover an image under it: the function accepts a
//! signature by any authority whose globs match, and under the longest
//! prefix an image has, every such authority's prefix is a prefix of that
//! one (both are prefixes of the image).
//!
//! A glob maps to the literal text before its first `*`, `?` or `[`
//! (escapes read), under the registry host; a glob with none is an exact
//! repository, `<path>:` and `<path>@`. A prefix is wider than its glob
//! (`upbound/provider-*-s3` is `<host>/upbound/provider-`), so Crossplane
//! may ask a signature of a package the function does not gate. (A
//! malformed glob, refused by the input anyway, maps to nothing.)

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use serde_json::{Value as Json, json};

use super::Planned;
use super::packages::into_map;
use crate::names::{Grammar, hash, object_name};
use crate::signature::{PublicKey, Trust};
use crate::spec::Settings;
use crate::spec::glob::path_match;
use crate::spec::verify::{Authority, Verify};

/// Composition resource names of the Secrets and ImageConfigs start with
/// this.
pub const PREFIX: &str = "verify-";

/// The key in each Secret that holds the PEM public key.
pub const SECRET_KEY: &str = "cosign.pub";

/// The Secrets and ImageConfigs, Secrets first; nothing unless the input's
/// `verify.composeImageConfig` is true.
pub fn compose(settings: &Settings) -> Vec<Planned> {
    let Some(verify) = settings.verify.as_ref().filter(|v| v.compose_image_config) else {
        return Vec::new();
    };
    let mut planned = secrets(verify);
    planned.extend(image_configs(verify, &settings.registry_host));
    planned
}

/// The Secret's `metadata.name` for a key: named after the key itself (its
/// cosign hint), so one name always holds one key, and authorities that
/// share a key share its Secret.
pub fn secret_name(key: &PublicKey) -> String {
    object_name("ecr-verify-key", &hash(&[key.hint()]), Grammar::Label)
}

/// The ImageConfig's `metadata.name` for a prefix.
pub fn image_config_name(prefix: &str) -> String {
    object_name("ecr-verify", prefix, Grammar::PathPrefix)
}

/// The Secret per distinct key.
fn secrets(verify: &Verify) -> Vec<Planned> {
    let mut by_name = BTreeMap::new();
    for (_, _, key) in keyed(verify) {
        by_name.entry(secret_name(key)).or_insert(key.pem());
    }
    by_name
        .into_iter()
        .map(|(name, pem)| {
            let data = base64::engine::general_purpose::STANDARD.encode(pem);
            let object = json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": verify.crossplane_namespace},
                "type": "Opaque",
                "data": {SECRET_KEY: data},
            });
            Planned {
                name: object_name(PREFIX.trim_end_matches('-'), &name, Grammar::Label),
                object: into_map(object),
                needs: Vec::new(),
            }
        })
        .collect()
}

/// An authority's key; none for a keyless one.
pub fn public_key(authority: &Authority) -> Option<&PublicKey> {
    match &authority.trust {
        Trust::Key(key) => Some(key),
        Trust::Keyless(_) => None,
    }
}

/// The authorities composed, with their index and key: those with a key.
/// Crossplane's keyless verification reads the public Sigstore instance's
/// trust root, not the input's, so keyless authorities are not composed.
fn keyed(verify: &Verify) -> impl Iterator<Item = (usize, &Authority, &PublicKey)> {
    verify
        .authorities
        .iter()
        .enumerate()
        .filter_map(|(i, a)| public_key(a).map(|key| (i, a, key)))
}

/// One ImageConfig per prefix, listing the authorities whose own prefixes
/// it starts with, in input order.
fn image_configs(verify: &Verify, registry_host: &str) -> Vec<Planned> {
    let mut prefixes: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    for (i, authority, _) in keyed(verify) {
        for glob in &authority.repositories {
            for prefix in image_prefixes(registry_host, glob) {
                prefixes.entry(prefix).or_default().insert(i);
            }
        }
    }
    let owners: Vec<(String, BTreeSet<usize>)> = prefixes.clone().into_iter().collect();
    prefixes
        .keys()
        .map(|prefix| {
            let covering: BTreeSet<usize> = owners
                .iter()
                .filter(|(other, _)| prefix.starts_with(other.as_str()))
                .flat_map(|(_, set)| set.iter().copied())
                .collect();
            let authorities: Vec<Json> = covering
                .into_iter()
                .filter_map(|i| {
                    let authority = &verify.authorities[i];
                    public_key(authority).map(|key| cosign_authority(authority, key))
                })
                .collect();
            let name = image_config_name(prefix);
            let object = json!({
                "apiVersion": "pkg.crossplane.io/v1beta1",
                "kind": "ImageConfig",
                "metadata": {"name": name},
                "spec": {
                    "matchImages": [{"type": "Prefix", "prefix": prefix}],
                    "verification": {
                        "provider": "Cosign",
                        "cosign": {"authorities": authorities},
                    },
                },
            });
            Planned {
                name: object_name(
                    &format!("{PREFIX}image-config"),
                    prefix,
                    Grammar::PathPrefix,
                ),
                object: into_map(object),
                needs: Vec::new(),
            }
        })
        .collect()
}

fn cosign_authority(authority: &Authority, key: &PublicKey) -> Json {
    json!({
        "name": authority.name,
        "key": {
            "secretRef": {"name": secret_name(key), "key": SECRET_KEY},
            "hashAlgorithm": "sha256",
        },
    })
}

/// The image path prefixes Crossplane matches for the repositories `glob`
/// covers: `<host>/<literal part>`, or `<host>/<repository>:` and `@` for a
/// glob without metacharacters; none for a malformed glob.
pub fn image_prefixes(registry_host: &str, glob: &str) -> Vec<String> {
    if path_match(glob.as_bytes(), b"").is_err() {
        return Vec::new();
    }
    let mut literal = String::new();
    let mut chars = glob.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' | '?' | '[' => return vec![format!("{registry_host}/{literal}")],
            '\\' => literal.extend(chars.next()),
            c => literal.push(c),
        }
    }
    vec![
        format!("{registry_host}/{literal}:"),
        format!("{registry_host}/{literal}@"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::{is_owned, plan};
    use crate::names::is_label;
    use crate::package::PackageKind;
    use crate::resolve::graph::{Graph, PackageNode};
    use crate::sdk::request::decode;
    use crate::signature::fixtures::{PEM, signed};
    use crate::spec::Input;
    use crate::spec::xr::{XrRef, XrSpec};

    const HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

    fn settings(input: Json) -> Settings {
        let spec: XrSpec = serde_json::from_value(json!({
            "registry": {"accountId": "123456789012", "region": "us-east-1"},
            "packages": [{"kind": "Provider", "repository": "upbound/provider-aws-s3", "version": "v2.2.0"}],
        }))
        .expect("spec");
        let input: Input = serde_json::from_value(input).expect("input");
        Settings::new(XrRef::named("team-a"), &spec, &input).expect("settings")
    }

    fn verify(authorities: Json, extra: Json) -> Json {
        let mut verify = json!({"authorities": authorities});
        if let (Some(v), Some(e)) = (verify.as_object_mut(), extra.as_object()) {
            v.extend(e.clone());
        }
        json!({"verify": verify})
    }

    fn authority(name: &str, repositories: &[&str], pem: &str) -> Json {
        json!({"name": name, "repositories": repositories, "key": {"publicKey": pem}})
    }

    fn graph() -> Graph {
        Graph::new([PackageNode {
            repository: "upbound/provider-aws-s3".to_string(),
            kind: PackageKind::Provider,
            upstream: "xpkg.upbound.io/upbound/provider-aws-s3".to_string(),
            name: "upbound-provider-aws-s3".to_string(),
            version: "v2.2.0".to_string(),
            digest: String::new(),
            depends_on: Default::default(),
            runtime_config_name: None,
        }])
        .expect("graph")
    }

    fn kinds(planned: &[Planned]) -> Vec<&str> {
        planned
            .iter()
            .filter_map(|p| p.object.get("kind").and_then(Json::as_str))
            .collect()
    }

    #[test]
    fn prefixes_are_the_literal_part_of_each_glob_under_the_host() {
        for (glob, prefixes) in [
            ("upbound/*", vec![format!("{HOST}/upbound/")]),
            ("*", vec![format!("{HOST}/")]),
            (
                "upbound/provider-*-s3",
                vec![format!("{HOST}/upbound/provider-")],
            ),
            ("team-?/x", vec![format!("{HOST}/team-")]),
            ("a/[bc]", vec![format!("{HOST}/a/")]),
            (
                "upbound/provider-aws-s3",
                vec![
                    format!("{HOST}/upbound/provider-aws-s3:"),
                    format!("{HOST}/upbound/provider-aws-s3@"),
                ],
            ),
            (
                r"a/b\*c",
                vec![format!("{HOST}/a/b*c:"), format!("{HOST}/a/b*c@")],
            ),
            ("a/[", vec![]),
            (r"a\", vec![]),
        ] {
            assert_eq!(image_prefixes(HOST, glob), prefixes, "{glob}");
        }
    }

    #[test]
    fn nothing_is_composed_unless_asked() {
        let auth = json!([authority("platform", &["upbound/*"], PEM)]);
        for input in [
            json!({}),
            verify(auth.clone(), json!({})),
            verify(auth, json!({"composeImageConfig": false})),
        ] {
            let settings = settings(input.clone());
            assert!(compose(&settings).is_empty(), "{input}");
            let planned = plan(&settings, &graph()).expect("plan");
            assert!(
                planned.iter().all(|p| !p.name.starts_with(PREFIX)),
                "{input}"
            );
        }
    }

    /// Each ImageConfig's prefix and the names of its authorities, each
    /// checked to name its key's Secret.
    fn authorities_by_prefix(
        planned: &[Planned],
        verify: &Verify,
    ) -> BTreeMap<String, Vec<String>> {
        planned
            .iter()
            .map(|p| {
                let spec = &p.object["spec"];
                assert_eq!(spec["verification"]["provider"], json!("Cosign"));
                let names = spec["verification"]["cosign"]["authorities"]
                    .as_array()
                    .expect("authorities")
                    .iter()
                    .map(|a| {
                        assert_eq!(a["key"]["hashAlgorithm"], json!("sha256"));
                        assert_eq!(a["key"]["secretRef"]["key"], json!(SECRET_KEY));
                        let authority = verify.authority(a["name"].as_str().expect("name"));
                        assert_eq!(
                            a["key"]["secretRef"]["name"],
                            json!(secret_name(
                                public_key(authority.expect("an authority")).expect("a key")
                            ))
                        );
                        a["name"].as_str().expect("name").to_string()
                    })
                    .collect();
                assert_eq!(spec["matchImages"][0]["type"], json!("Prefix"));
                let prefix = spec["matchImages"][0]["prefix"].as_str().expect("prefix");
                assert_eq!(
                    p.object["metadata"]["name"],
                    json!(image_config_name(prefix))
                );
                (prefix.to_string(), names)
            })
            .collect()
    }

    #[test]
    fn composes_a_secret_per_key_and_an_image_config_per_prefix() {
        let (other, _) = signed(7, "sha256:00");
        let settings = settings(verify(
            json!([
                authority("all", &["*"], PEM),
                authority("team-a", &["upbound/*", "upbound/provider-aws-s3"], &other),
                authority("same-key", &["other/y"], PEM),
            ]),
            json!({"composeImageConfig": true, "crossplaneNamespace": "xp"}),
        ));
        let planned = compose(&settings);
        assert_eq!(
            kinds(&planned),
            [
                "Secret",
                "Secret",
                "ImageConfig",
                "ImageConfig",
                "ImageConfig",
                "ImageConfig",
                "ImageConfig",
                "ImageConfig"
            ]
        );
        for p in &planned {
            assert!(
                p.name.starts_with(PREFIX) && is_owned(&p.name),
                "{}",
                p.name
            );
            assert!(is_label(&p.name), "{}", p.name);
            let name = p.object["metadata"]["name"].as_str().expect("name");
            assert!(is_label(name), "{name}");
            assert!(p.needs.is_empty());
        }
        // The Secrets: one per key, in Crossplane's namespace, its PEM.
        let key = |pem: &str| crate::signature::PublicKey::from_pem(pem).expect("key");
        let mut pems = Vec::new();
        for secret in &planned[..2] {
            assert_eq!(secret.object["metadata"]["namespace"], json!("xp"));
            assert_eq!(secret.object["type"], json!("Opaque"));
            let data = secret.object["data"][SECRET_KEY].as_str().expect("data");
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(data)
                .expect("base64");
            pems.push(String::from_utf8(decoded).expect("utf-8"));
        }
        pems.sort();
        let mut expected = vec![key(PEM).pem().to_string(), key(&other).pem().to_string()];
        expected.sort();
        assert_eq!(pems, expected);
        let verify = settings.verify.as_ref().expect("verify");
        assert_eq!(
            secret_name(public_key(&verify.authorities[0]).expect("a key")),
            secret_name(public_key(&verify.authorities[2]).expect("a key"))
        );
        assert_ne!(
            secret_name(public_key(&verify.authorities[0]).expect("a key")),
            secret_name(public_key(&verify.authorities[1]).expect("a key"))
        );
        // The ImageConfigs: each prefix with every authority whose own
        // prefix it starts with.
        let by_prefix = authorities_by_prefix(&planned[2..], verify);
        let all = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let expected: BTreeMap<String, Vec<String>> = [
            (format!("{HOST}/"), all(&["all"])),
            (format!("{HOST}/upbound/"), all(&["all", "team-a"])),
            (
                format!("{HOST}/upbound/provider-aws-s3:"),
                all(&["all", "team-a"]),
            ),
            (
                format!("{HOST}/upbound/provider-aws-s3@"),
                all(&["all", "team-a"]),
            ),
            (format!("{HOST}/other/y:"), all(&["all", "same-key"])),
            (format!("{HOST}/other/y@"), all(&["all", "same-key"])),
        ]
        .into_iter()
        .collect();
        assert_eq!(by_prefix, expected);
    }

    #[test]
    fn every_package_needs_the_verification_objects() {
        let settings = settings(verify(
            json!([authority("platform", &["upbound/*"], PEM)]),
            json!({"composeImageConfig": true}),
        ));
        let planned = plan(&settings, &graph()).expect("plan");
        let ours: Vec<&str> = planned
            .iter()
            .filter(|p| p.name.starts_with(PREFIX))
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(ours.len(), 2, "{ours:?}");
        let secret = planned.iter().find(|p| p.name == ours[0]).expect("secret");
        assert_eq!(
            secret.object["metadata"]["namespace"],
            json!("crossplane-system")
        );
        let package = planned
            .iter()
            .find(|p| p.name == "package-upbound-provider-aws-s3")
            .expect("package");
        for name in ours {
            assert!(package.needs.iter().any(|n| n == name), "{name}");
        }
    }

    #[test]
    fn the_crossplane_namespace_is_a_dns_label() {
        let auth = json!([authority("platform", &["upbound/*"], PEM)]);
        for bad in [
            json!(""),
            json!("Crossplane"),
            json!("a.b"),
            json!("x".repeat(64)),
        ] {
            let err = decode::<Verify>(json!({"authorities": auth, "crossplaneNamespace": bad}))
                .unwrap_err();
            assert_eq!(err.path, "crossplaneNamespace", "{bad}: {}", err.message);
        }
        let err = decode::<Verify>(json!({"authorities": auth, "composeImageConfig": "yes"}))
            .unwrap_err();
        assert_eq!(err.path, "composeImageConfig", "{}", err.message);
    }
}
