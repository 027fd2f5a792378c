//! The resolver against an in-memory registry: Crossplane's choices, case
//! by case.

use super::*;
use crate::package::{PackageKind, PackageMeta};
use crate::registry::Registry;
use crate::registry::memory::{MemoryRegistry, meta};
use crate::resolve::graph::{Graph, PackageNode};
use crate::sdk::request::decode;
use crate::spec::Input;
use crate::spec::limits::MAX_STATUS_PACKAGES;
use serde_json::{Value as Json, json};

const FAMILY: &str = "xpkg.upbound.io/upbound/provider-family-aws";
const PAT: &str = "crossplane-contrib/function-patch-and-transform";

/// The blog case: provider-aws-s3 depends on the family provider.
fn blog_registry() -> MemoryRegistry {
    let registry = MemoryRegistry::new();
    for tag in ["v2.1.0", "v2.2.0", "v2.3.0-rc.1", "v2", "latest"] {
        registry.push(
            "upbound/provider-family-aws",
            tag,
            meta(PackageKind::Provider, &[]),
        );
    }
    for tag in ["v2.1.0", "v2.2.0"] {
        registry.push("upbound/provider-aws-s3", tag, needs_family(">= 0.0.0"));
    }
    for tag in ["v0.8.1", "v0.8.2"] {
        registry.push(PAT, tag, meta(PackageKind::Function, &[]));
    }
    registry
}

/// A Provider that depends on the family provider at `constraint`.
fn needs_family(constraint: &str) -> PackageMeta {
    meta(
        PackageKind::Provider,
        &[(FAMILY, PackageKind::Provider, constraint)],
    )
}

/// An entry of `spec.packages`.
fn package(kind: &str, repository: &str, version: &str) -> Json {
    json!({"kind": kind, "repository": repository, "version": version})
}

async fn resolve(registry: &MemoryRegistry, packages: Json, input: Json) -> Result<Graph> {
    resolve_with(registry, packages, input).await
}

/// [`resolve`] against any registry (a cache in front of one, a wrapper).
async fn resolve_with(registry: &dyn Registry, packages: Json, input: Json) -> Result<Graph> {
    let spec: XrSpec = decode(json!({
        "registry": {"accountId": "123456789012", "region": "eu-west-2"},
        "packages": packages,
    }))
    .expect("spec");
    let input: Input = decode(input).expect("input");
    let settings =
        Settings::new(crate::spec::xr::XrRef::named("demo"), &spec, &input).expect("settings");
    Resolver::new(&settings, &spec, registry)
        .resolve()
        .await
        .map(|r| r.graph)
}

/// [`resolve`] with the default input, which must succeed.
async fn resolved(registry: &MemoryRegistry, packages: Json) -> Graph {
    resolve(registry, packages, json!({}))
        .await
        .expect("resolves")
}

/// The version resolved for `repository`, if it is in the graph.
fn version_of<'g>(graph: &'g Graph, repository: &str) -> Option<&'g str> {
    graph.get(repository).map(|n| n.version.as_str())
}

fn versions(graph: &Graph) -> Vec<(String, String, Vec<String>)> {
    graph
        .install_order()
        .into_iter()
        .map(|n| {
            (
                n.name.clone(),
                n.version.clone(),
                n.depends_on.iter().cloned().collect(),
            )
        })
        .collect()
}

fn row(name: &str, version: &str, deps: &[&str]) -> (String, String, Vec<String>) {
    (
        name.to_string(),
        version.to_string(),
        deps.iter().map(|d| d.to_string()).collect(),
    )
}

/// A package wanted exactly as in the round before is not asked about
/// again: a chain four deep takes five rounds, and each package is
/// still read once (its tags, with its digest, and its metadata; the
/// listed one's tags once, to see whether its version names a tag and to
/// select).
#[tokio::test]
async fn each_package_is_read_once_however_many_rounds() {
    let registry = MemoryRegistry::new();
    let chain = ["chain/a", "chain/b", "chain/c", "chain/d"];
    for pair in chain.windows(2) {
        let next = format!("xpkg.upbound.io/{}", pair[1]);
        let declares = [(next.as_str(), PackageKind::Provider, ">=v1.0.0")];
        registry.push(pair[0], "v1.0.0", meta(PackageKind::Provider, &declares));
    }
    registry.push("chain/d", "v1.0.0", meta(PackageKind::Provider, &[]));
    let graph = resolved(
        &registry,
        json!([package("Provider", "chain/a", ">=v1.0.0")]),
    )
    .await;
    assert_eq!(graph.nodes().count(), 4);
    // A tag list (which gives the digest) and the metadata per package:
    // the listed one's tags are listed once, for its exact tag and for its
    // constraint.
    assert_eq!(registry.calls(), 2 * chain.len());
    assert_eq!(registry.resolve_digest_calls(), 0);
}

#[tokio::test]
async fn a_closure_larger_than_a_status_can_hold_is_refused() {
    let registry = MemoryRegistry::new();
    let deps: Vec<String> = (0..=MAX_STATUS_PACKAGES)
        .map(|i| format!("xpkg.upbound.io/many/dep-{i}"))
        .collect();
    for i in 0..=MAX_STATUS_PACKAGES {
        registry.push(
            &format!("many/dep-{i}"),
            "v1.0.0",
            meta(PackageKind::Provider, &[]),
        );
    }
    let edges: Vec<(&str, PackageKind, &str)> = deps
        .iter()
        .map(|d| (d.as_str(), PackageKind::Provider, ">=v1.0.0"))
        .collect();
    registry.push(
        "many/root",
        "v1.0.0",
        meta(PackageKind::Configuration, &edges),
    );
    let error = resolve(
        &registry,
        json!([package("Configuration", "many/root", "v1.0.0")]),
        json!({}),
    )
    .await
    .expect_err("too many");
    assert!(error.to_string().contains("more than 2048"), "{error}");
}

#[tokio::test]
async fn blog_case_with_implicit_family_version() {
    let registry = blog_registry();
    let graph = resolved(
        &registry,
        json!([
            package("Provider", "upbound/provider-aws-s3", ">=v2.0.0"),
            package("Function", PAT, "v0.8.2")
        ]),
    )
    .await;
    assert_eq!(
        versions(&graph),
        vec![
            row(
                "crossplane-contrib-function-patch-and-transform",
                "v0.8.2",
                &[]
            ),
            row("upbound-provider-family-aws", "v2.2.0", &[]),
            row(
                "upbound-provider-aws-s3",
                "v2.2.0",
                &["upbound/provider-family-aws"]
            ),
        ]
    );
    let family = graph.get("upbound/provider-family-aws").expect("family");
    assert_eq!(family.upstream, FAMILY);
    assert_eq!(family.kind, PackageKind::Provider);
    assert!(family.digest.starts_with("sha256:"));
}

#[tokio::test]
async fn an_explicit_version_wins_when_it_satisfies() {
    let registry = blog_registry();
    let graph = resolved(
        &registry,
        json!([
            package("Provider", "upbound/provider-family-aws", "v2.1.0"),
            package("Provider", "upbound/provider-aws-s3", "v2.2.0")
        ]),
    )
    .await;
    assert_eq!(
        version_of(&graph, "upbound/provider-family-aws"),
        Some("v2.1.0")
    );
}

#[tokio::test]
async fn exact_tags_need_not_be_semver() {
    let registry = blog_registry();
    let graph = resolved(
        &registry,
        json!([package("Provider", "upbound/provider-family-aws", "latest")]),
    )
    .await;
    assert_eq!(
        version_of(&graph, "upbound/provider-family-aws"),
        Some("latest")
    );
}

#[tokio::test]
async fn prereleases_only_when_admitted() {
    let registry = blog_registry();
    for (constraint, expected) in [
        (">=v2.0.0", "v2.2.0"),
        (">= 0.0.0-0", "v2.3.0-rc.1"),
        ("~2.1", "v2.1.0"),
    ] {
        let graph = resolved(
            &registry,
            json!([package(
                "Provider",
                "upbound/provider-family-aws",
                constraint
            )]),
        )
        .await;
        assert_eq!(
            version_of(&graph, "upbound/provider-family-aws"),
            Some(expected),
            "{constraint}"
        );
    }
}

#[tokio::test]
async fn digests_pin() {
    let registry = blog_registry();
    let digest = registry.push(
        "upbound/provider-family-aws",
        "v9.9.9",
        meta(PackageKind::Provider, &[]),
    );
    let graph = resolved(
        &registry,
        json!([package("Provider", "upbound/provider-family-aws", &digest)]),
    )
    .await;
    let node = graph.get("upbound/provider-family-aws").expect("node");
    assert_eq!(
        (node.version.as_str(), node.digest.as_str()),
        (digest.as_str(), digest.as_str())
    );
}

#[tokio::test]
async fn transitive_chains_resolve_in_order() {
    let registry = blog_registry();
    registry.push(
        "acme/configuration-platform",
        "v1.0.0",
        meta(
            PackageKind::Configuration,
            &[
                (
                    "xpkg.upbound.io/upbound/provider-aws-s3",
                    PackageKind::Provider,
                    ">=v2.1.0",
                ),
                (
                    "xpkg.crossplane.io/crossplane-contrib/function-patch-and-transform",
                    PackageKind::Function,
                    "<v0.8.2",
                ),
            ],
        ),
    );
    let graph = resolved(
        &registry,
        json!([package(
            "Configuration",
            "acme/configuration-platform",
            "v1.0.0"
        )]),
    )
    .await;
    assert_eq!(
        versions(&graph),
        vec![
            row(
                "crossplane-contrib-function-patch-and-transform",
                "v0.8.1",
                &[]
            ),
            row("upbound-provider-family-aws", "v2.2.0", &[]),
            row(
                "upbound-provider-aws-s3",
                "v2.2.0",
                &["upbound/provider-family-aws"]
            ),
            row(
                "acme-configuration-platform",
                "v1.0.0",
                &[
                    "crossplane-contrib/function-patch-and-transform",
                    "upbound/provider-aws-s3"
                ]
            ),
        ]
    );
    // A dependency keeps the upstream path its parent declared.
    assert_eq!(
        graph.get(PAT).map(|n| n.upstream.as_str()),
        Some("xpkg.crossplane.io/crossplane-contrib/function-patch-and-transform")
    );
}

#[tokio::test]
async fn constraints_from_several_parents_must_all_hold() {
    let registry = blog_registry();
    registry.push("acme/provider-a", "v1.0.0", needs_family("<v2.2.0"));
    registry.push("acme/provider-b", "v1.0.0", needs_family(">=v2.0.0"));
    registry.push("acme/provider-c", "v1.0.0", needs_family(">=v2.2.0"));
    let graph = resolved(
        &registry,
        json!([
            package("Provider", "acme/provider-a", "v1.0.0"),
            package("Provider", "acme/provider-b", "v1.0.0")
        ]),
    )
    .await;
    assert_eq!(
        version_of(&graph, "upbound/provider-family-aws"),
        Some("v2.1.0")
    );

    let err = resolve(
        &registry,
        json!([
            package("Provider", "acme/provider-a", "v1.0.0"),
            package("Provider", "acme/provider-c", "v1.0.0")
        ]),
        json!({}),
    )
    .await
    .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::Unsatisfiable { .. }), "{message}");
    for part in [
        "upbound/provider-family-aws",
        "\"<v2.2.0\" (required by acme/provider-a:v1.0.0)",
        "\">=v2.2.0\" (required by acme/provider-c:v1.0.0)",
    ] {
        assert!(message.contains(part), "{message}");
    }
}

#[tokio::test]
async fn an_explicit_version_that_breaks_a_parent_constraint_is_refused() {
    let registry = blog_registry();
    registry.push("acme/provider-c", "v1.0.0", needs_family(">=v2.2.0"));
    let err = resolve(
        &registry,
        json!([
            package("Provider", "upbound/provider-family-aws", "v2.1.0"),
            package("Provider", "acme/provider-c", "v1.0.0")
        ]),
        json!({}),
    )
    .await
    .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(">=v2.2.0\" (required by acme/provider-c:v1.0.0)"),
        "{message}"
    );
}

#[tokio::test]
async fn cycles_are_fatal_and_named() {
    let registry = MemoryRegistry::new();
    registry.push(
        "acme/a",
        "v1.0.0",
        meta(
            PackageKind::Provider,
            &[("xpkg.upbound.io/acme/b", PackageKind::Provider, ">=1.0.0")],
        ),
    );
    registry.push(
        "acme/b",
        "v1.0.0",
        meta(
            PackageKind::Provider,
            &[("xpkg.upbound.io/acme/a", PackageKind::Provider, ">=1.0.0")],
        ),
    );
    let err = resolve(
        &registry,
        json!([package("Provider", "acme/a", "v1.0.0")]),
        json!({}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "dependency cycle: acme/a (v1.0.0) -> acme/b (v1.0.0) -> acme/a (v1.0.0)"
    );
}

#[tokio::test]
async fn bad_dependencies_are_named_with_their_parent() {
    let registry = MemoryRegistry::new();
    registry.push(
        "acme/outside",
        "v1.0.0",
        meta(
            PackageKind::Provider,
            &[(
                "ghcr.io/someone/provider-x",
                PackageKind::Provider,
                ">=1.0.0",
            )],
        ),
    );
    registry.push(
        "acme/empty",
        "v1.0.0",
        meta(
            PackageKind::Provider,
            &[("xpkg.upbound.io/acme/x", PackageKind::Provider, "")],
        ),
    );
    registry.push("acme/kind", "v1.0.0", meta(PackageKind::Function, &[]));
    let cases = [
        (
            "acme/outside",
            "Provider",
            json!({}),
            "ghcr.io/someone/provider-x (a dependency of acme/outside:v1.0.0) is outside every mirror",
        ),
        (
            "acme/empty",
            "Provider",
            json!({}),
            "acme/empty:v1.0.0 declares an invalid version for xpkg.upbound.io/acme/x",
        ),
        (
            "acme/kind",
            "Provider",
            json!({}),
            "acme/kind:v1.0.0 is a Function package, but it is wanted as a Provider",
        ),
        (
            "acme/kind",
            "Function",
            json!({"allowedRepositories": ["upbound/*"]}),
            "repository acme/kind (spec.packages[0]) is not in the input's allowedRepositories (upbound/*)",
        ),
        (
            "acme/missing",
            "Provider",
            json!({}),
            "repository \"acme/missing\" not found",
        ),
    ];
    for (repository, kind, input, message) in cases {
        let err = resolve(
            &registry,
            json!([package(kind, repository, ">=1.0.0")]),
            input,
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains(message), "{repository}: {err}");
    }
}

#[tokio::test]
async fn unknown_versions_are_named() {
    let registry = blog_registry();
    let err = resolve(
        &registry,
        json!([package("Provider", "upbound/provider-family-aws", ">=v9")]),
        json!({}),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains(
            "no version of upbound/provider-family-aws satisfies \">=v9\" (spec.packages[0])"
        ),
        "{err}"
    );
    let err = resolve(
        &registry,
        json!([package(
            "Provider",
            "upbound/provider-family-aws",
            "not a version!"
        )]),
        json!({}),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidSpec { field, .. } if field == "spec.packages[0].version"),
        "{err}"
    );
}

#[tokio::test]
async fn dependency_resolution_can_be_turned_off() {
    let registry = blog_registry();
    let graph = resolve(
        &registry,
        json!([package("Provider", "upbound/provider-aws-s3", "v2.2.0")]),
        json!({"resolveDependencies": false}),
    )
    .await
    .expect("resolves");
    assert_eq!(
        versions(&graph),
        vec![row("upbound-provider-aws-s3", "v2.2.0", &[])]
    );
}

/// Two parents declare the family under different upstream hosts that
/// both mirror to one repository: whichever order or names they come
/// in, the family is referenced (and named) the same way.
#[tokio::test]
async fn a_dependency_does_not_depend_on_which_parent_pulled_it_in() {
    let registry = blog_registry();
    let declared = [
        FAMILY.to_string(),
        FAMILY.replace("xpkg.upbound.io", "xpkg.crossplane.io"),
    ];
    for (i, path) in declared.iter().enumerate() {
        registry.push(
            &format!("acme/provider-{i}"),
            "v1.0.0",
            meta(
                PackageKind::Provider,
                &[(path.as_str(), PackageKind::Provider, ">=v2.0.0")],
            ),
        );
    }
    let mut seen = Vec::new();
    for (first, second, name) in [
        ("acme/provider-0", "acme/provider-1", None),
        ("acme/provider-1", "acme/provider-0", None),
        ("acme/provider-1", "acme/provider-0", Some("renamed-parent")),
    ] {
        let mut packages = json!([
            package("Provider", first, "v1.0.0"),
            package("Provider", second, "v1.0.0")
        ]);
        if let Some(name) = name {
            packages[0]["name"] = json!(name);
        }
        let graph = resolved(&registry, packages).await;
        let family = graph
            .get("upbound/provider-family-aws")
            .expect("family")
            .clone();
        seen.push((family.name, family.upstream));
    }
    assert_eq!(
        seen[0],
        (
            "upbound-provider-family-aws".to_string(),
            "xpkg.crossplane.io/upbound/provider-family-aws".to_string()
        )
    );
    assert!(seen.iter().all(|s| *s == seen[0]), "{seen:?}");
}

// --- Digests from the tag listing (issue 27) ---------------------------------

mod listed_digests {
    use super::*;
    use crate::registry::cache::CachedRegistry;
    use crate::registry::{ListedTag, Tags};
    use async_trait::async_trait;
    use std::sync::Arc;
    use std::time::Duration;

    const S3: &str = "upbound/provider-aws-s3";
    const FAMILY_REPO: &str = "upbound/provider-family-aws";

    /// The digest [`MemoryRegistry::push`] gives an image.
    fn pushed(repository: &str, tag: &str) -> String {
        crate::oci::blob::sha256_digest(format!("{repository}:{tag}").as_bytes())
    }

    fn digest_in<'g>(graph: &'g Graph, repository: &str) -> &'g str {
        &graph.get(repository).expect("in the graph").digest
    }

    /// A package chosen by tag, by constraint or exactly, takes its digest
    /// from the tag listing: the cache in front of the registry is asked
    /// no tag -> digest question, cold or warm (a cold one would have gone
    /// through to the registry), and a digest pin still is.
    #[tokio::test]
    async fn a_tag_takes_the_digest_its_listing_gave() {
        let mem = Arc::new(blog_registry());
        let cache = CachedRegistry::with_tag_ttl(mem.clone(), Duration::from_secs(60));
        let packages = json!([
            package("Provider", S3, ">= 2.0.0"),
            package("Function", PAT, "v0.8.1"),
        ]);
        let cold = resolve_with(&cache, packages.clone(), json!({}))
            .await
            .expect("resolves");
        assert_eq!(digest_in(&cold, S3), pushed(S3, "v2.2.0"));
        assert_eq!(digest_in(&cold, FAMILY_REPO), pushed(FAMILY_REPO, "v2.2.0"));
        assert_eq!(digest_in(&cold, PAT), pushed(PAT, "v0.8.1"));
        assert_eq!(mem.resolve_digest_calls(), 0, "no tag was resolved");
        let calls = mem.calls();
        let warm = resolve_with(&cache, packages, json!({}))
            .await
            .expect("resolves");
        assert_eq!(versions(&warm), versions(&cold));
        assert_eq!(
            mem.calls(),
            calls,
            "a warm resolve asks the registry nothing"
        );

        let pin = pushed(PAT, "v0.8.2");
        let pinned = resolve_with(&cache, json!([package("Function", PAT, &pin)]), json!({}))
            .await
            .expect("resolves");
        assert_eq!(digest_in(&pinned, PAT), pin);
        assert_eq!(mem.resolve_digest_calls(), 1, "a digest pin is asked for");
    }

    /// A tag moved to a new image is seen, with the new digest, once the
    /// cached listing expires; until then the listing's digest stands.
    #[tokio::test]
    async fn a_moved_tag_is_seen_with_its_new_digest_once_the_listing_expires() {
        let mem = Arc::new(blog_registry());
        let ttl = Duration::from_millis(300);
        let cache = CachedRegistry::with_tag_ttl(mem.clone(), ttl);
        let packages = json!([package("Provider", S3, "v2.2.0")]);
        let before = resolve_with(&cache, packages.clone(), json!({}))
            .await
            .expect("resolves");
        assert_eq!(digest_in(&before, S3), pushed(S3, "v2.2.0"));

        let moved = mem.move_tag(S3, "v2.2.0", needs_family(">= 0.0.0"));
        assert_ne!(moved, pushed(S3, "v2.2.0"));
        let cached = resolve_with(&cache, packages.clone(), json!({}))
            .await
            .expect("resolves");
        assert_eq!(
            digest_in(&cached, S3),
            pushed(S3, "v2.2.0"),
            "within the TTL"
        );

        tokio::time::sleep(ttl + Duration::from_millis(100)).await;
        let after = resolve_with(&cache, packages, json!({}))
            .await
            .expect("resolves");
        assert_eq!(digest_in(&after, S3), moved);
        assert_eq!(mem.resolve_digest_calls(), 0);
    }

    /// A registry whose listing gives `tag` a malformed digest.
    struct Misdigested {
        inner: MemoryRegistry,
        tag: &'static str,
    }

    #[async_trait]
    impl Registry for Misdigested {
        async fn list_tags(&self, repository: &str) -> Result<Tags> {
            let listed = self.inner.list_tags(repository).await?;
            Ok(Tags::listed(listed.iter().map(|tag| ListedTag {
                tag: tag.clone(),
                digest: if tag == self.tag {
                    Some("sha256:NOT-A-DIGEST".to_string())
                } else {
                    listed.digest_of(tag).map(str::to_string)
                },
            })))
        }

        async fn resolve_digest(&self, repository: &str, reference: &str) -> Result<String> {
            self.inner.resolve_digest(repository, reference).await
        }

        async fn package_meta(&self, repository: &str, digest: &str) -> Result<Arc<PackageMeta>> {
            self.inner.package_meta(repository, digest).await
        }
    }

    /// A malformed listed digest is not taken: that tag's digest is asked
    /// for, and the others' still come from the listing.
    #[tokio::test]
    async fn a_malformed_listed_digest_falls_back_to_resolving_the_tag() {
        let registry = Misdigested {
            inner: blog_registry(),
            tag: "v2.2.0",
        };
        let graph = resolve_with(
            &registry,
            json!([package("Provider", S3, "v2.2.0")]),
            json!({}),
        )
        .await
        .expect("resolves");
        assert_eq!(digest_in(&graph, S3), pushed(S3, "v2.2.0"));
        assert_eq!(
            digest_in(&graph, FAMILY_REPO),
            pushed(FAMILY_REPO, "v2.2.0")
        );
        // S3's and the family's v2.2.0 both resolved: both are misdigested.
        assert_eq!(registry.inner.resolve_digest_calls(), 2);
    }
}

// --- The supply-chain gate (the input's `scan`) ------------------------------

/// One installed package: what the gates keep when nothing newer passes.
struct InstalledFamily(PackageNode);

impl Installed for InstalledFamily {
    fn get(&self, repository: &str) -> Option<&PackageNode> {
        (repository == self.0.repository).then_some(&self.0)
    }
}

mod scan_gate {
    use super::*;
    use crate::registry::scan::{ScanReport, Severity};
    use crate::resolve::scan::Skipped;

    const S3: &str = "upbound/provider-aws-s3";
    const FAMILY_REPO: &str = "upbound/provider-family-aws";

    /// The blog registry with every image scanned clean but those named.
    fn scanned(findings: &[(&str, &str, ScanReport)]) -> MemoryRegistry {
        let registry = blog_registry();
        for repository in [S3, FAMILY_REPO, PAT] {
            for tag in registry_tags(&registry, repository) {
                let digest = digest_of(&registry, repository, &tag);
                registry.set_scan(&digest, ScanReport::clean());
            }
        }
        for (repository, tag, report) in findings {
            registry.set_scan(&digest_of(&registry, repository, tag), report.clone());
        }
        registry
    }

    /// The tags [`blog_registry`] pushes.
    fn registry_tags(_: &MemoryRegistry, repository: &str) -> Vec<String> {
        let tags: &[&str] = match repository {
            FAMILY_REPO => &["v2.1.0", "v2.2.0", "v2.3.0-rc.1", "v2", "latest"],
            S3 => &["v2.1.0", "v2.2.0"],
            _ => &["v0.8.1", "v0.8.2"],
        };
        tags.iter().map(|t| t.to_string()).collect()
    }

    /// The digest [`MemoryRegistry::push`] gives an image.
    fn digest_of(_: &MemoryRegistry, repository: &str, tag: &str) -> String {
        crate::oci::blob::sha256_digest(format!("{repository}:{tag}").as_bytes())
    }

    fn critical(name: &str) -> ScanReport {
        ScanReport::with_findings(&[(name, Severity::Critical)])
    }

    async fn gated(
        registry: &MemoryRegistry,
        scan: Json,
        installed: Option<&dyn Installed>,
    ) -> Result<Resolution> {
        let spec: XrSpec = decode(json!({
            "registry": {"accountId": "123456789012", "region": "eu-west-2"},
            "packages": [package("Provider", S3, ">= 2.0.0"), package("Function", PAT, ">= 0.8.0")],
        }))
        .expect("spec");
        let input: Input = decode(json!({"scan": scan})).expect("input");
        let settings =
            Settings::new(crate::spec::xr::XrRef::named("demo"), &spec, &input).expect("settings");
        Resolver::new(&settings, &spec, registry)
            .keeping(installed)
            .resolve()
            .await
    }

    fn policy(extra: Json) -> Json {
        let mut scan = json!({"repositories": ["upbound/*"], "maxSeverity": "HIGH"});
        for (k, v) in extra.as_object().expect("object") {
            scan[k] = v.clone();
        }
        scan
    }

    #[tokio::test]
    async fn a_critical_finding_skips_the_version_for_the_next_clean_one() {
        let registry = scanned(&[(S3, "v2.2.0", critical("CVE-2024-1234"))]);
        let r = gated(&registry, policy(json!({})), None)
            .await
            .expect("resolves");
        assert_eq!(version_of(&r.graph, S3), Some("v2.1.0"));
        assert_eq!(version_of(&r.graph, FAMILY_REPO), Some("v2.2.0"));
        assert_eq!(
            r.skipped["upbound-provider-aws-s3"],
            vec![Skipped::new(
                "v2.2.0",
                "finding CVE-2024-1234 of severity CRITICAL"
            )]
        );
        assert!(r.blocked.is_empty() && r.kept.is_empty());
    }

    #[tokio::test]
    async fn ignore_and_tolerance_let_it_through_and_ungated_repositories_are_not_asked() {
        let registry = scanned(&[
            (S3, "v2.2.0", critical("CVE-2024-1234")),
            (PAT, "v0.8.2", critical("CVE-2024-9")),
        ]);
        let ignored = policy(json!({"ignore": ["CVE-2024-1234"]}));
        let r = gated(&registry, ignored, None).await.expect("resolves");
        assert_eq!(version_of(&r.graph, S3), Some("v2.2.0"));
        assert_eq!(version_of(&r.graph, PAT), Some("v0.8.2"), "not gated");
        assert!(r.skipped.is_empty());
        let tolerant = policy(json!({"maxSeverity": "CRITICAL"}));
        let r = gated(&registry, tolerant, None).await.expect("resolves");
        assert_eq!(version_of(&r.graph, S3), Some("v2.2.0"));
    }

    #[tokio::test]
    async fn a_pending_scan_waits_unless_allowed() {
        let registry = scanned(&[(
            FAMILY_REPO,
            "v2.2.0",
            ScanReport::not_scanned("IN_PROGRESS"),
        )]);
        let r = gated(&registry, policy(json!({})), None)
            .await
            .expect("resolves");
        assert_eq!(version_of(&r.graph, FAMILY_REPO), Some("v2.1.0"));
        assert_eq!(
            r.skipped["upbound-provider-family-aws"],
            vec![Skipped::new(
                "v2.2.0",
                "scan pending (ECR reports IN_PROGRESS)"
            )]
        );
        let allow = policy(json!({"whenMissing": "Allow"}));
        let r = gated(&registry, allow, None).await.expect("resolves");
        assert_eq!(version_of(&r.graph, FAMILY_REPO), Some("v2.2.0"));
    }

    #[tokio::test]
    async fn a_dependency_with_no_passing_version_is_blocked_and_its_dependents_wait() {
        let registry = scanned(&[
            (FAMILY_REPO, "v2.2.0", critical("CVE-1")),
            (FAMILY_REPO, "v2.1.0", ScanReport::not_scanned("NOT_FOUND")),
        ]);
        let r = gated(&registry, policy(json!({})), None)
            .await
            .expect("resolves");
        assert_eq!(version_of(&r.graph, FAMILY_REPO), None);
        assert_eq!(version_of(&r.graph, S3), None, "waits for its dependency");
        assert_eq!(version_of(&r.graph, PAT), Some("v0.8.2"), "unrelated");
        assert_eq!(r.blocked.len(), 1);
        let blocked = r.blocked[0].to_string();
        assert_eq!(
            blocked,
            "upbound-provider-family-aws is not installed: no version of upbound/provider-family-aws \
             passes the supply-chain gate: v2.2.0 (finding CVE-1 of severity CRITICAL); \
             v2.1.0 (scan pending (ECR reports NOT_FOUND)); waiting for it: upbound-provider-aws-s3"
        );
    }

    #[tokio::test]
    async fn an_installed_package_whose_candidates_all_fail_stays() {
        let registry = scanned(&[
            (FAMILY_REPO, "v2.2.0", critical("CVE-1")),
            (FAMILY_REPO, "v2.1.0", critical("CVE-2")),
        ]);
        let installed = InstalledFamily(PackageNode {
            repository: FAMILY_REPO.to_string(),
            kind: PackageKind::Provider,
            upstream: FAMILY.to_string(),
            name: "upbound-provider-family-aws".to_string(),
            version: "v2.1.0".to_string(),
            digest: digest_of(&registry, FAMILY_REPO, "v2.1.0"),
            depends_on: Default::default(),
            runtime_config_name: None,
        });
        let r = gated(&registry, policy(json!({})), Some(&installed))
            .await
            .expect("resolves");
        assert_eq!(version_of(&r.graph, FAMILY_REPO), Some("v2.1.0"));
        assert_eq!(version_of(&r.graph, S3), Some("v2.2.0"));
        assert!(r.blocked.is_empty());
        assert_eq!(r.kept.len(), 1);
        assert!(
            r.kept[0].to_string().starts_with(
                "keeping installed package upbound-provider-family-aws at v2.1.0: no version"
            ),
            "{}",
            r.kept[0]
        );
    }

    #[tokio::test]
    async fn an_exact_tag_that_fails_is_blocked_and_candidates_are_bounded() {
        let registry = scanned(&[(PAT, "v0.8.2", critical("CVE-3"))]);
        let spec: XrSpec = decode(json!({
            "registry": {"accountId": "123456789012", "region": "eu-west-2"},
            "packages": [package("Function", PAT, "v0.8.2")],
        }))
        .expect("spec");
        let input: Input =
            decode(json!({"scan": {"repositories": ["*/*"], "maxSeverity": "NONE"}}))
                .expect("input");
        let settings =
            Settings::new(crate::spec::xr::XrRef::named("demo"), &spec, &input).expect("settings");
        let r = Resolver::new(&settings, &spec, &registry)
            .resolve()
            .await
            .expect("resolves");
        assert!(r.graph.is_empty());
        assert!(
            r.blocked[0]
                .to_string()
                .contains("v0.8.2 (finding CVE-3 of severity CRITICAL)")
        );

        // Many failing releases: at most MAX_SKIPPED are asked about.
        let many = MemoryRegistry::new();
        for i in 0..40 {
            let d = many.push(PAT, &format!("v1.0.{i}"), meta(PackageKind::Function, &[]));
            many.set_scan(&d, critical("CVE-4"));
        }
        let spec: XrSpec = decode(json!({
            "registry": {"accountId": "123456789012", "region": "eu-west-2"},
            "packages": [package("Function", PAT, ">= 1.0.0")],
        }))
        .expect("spec");
        let settings =
            Settings::new(crate::spec::xr::XrRef::named("demo"), &spec, &input).expect("settings");
        let before = many.calls();
        let r = Resolver::new(&settings, &spec, &many)
            .resolve()
            .await
            .expect("resolves");
        assert_eq!(r.blocked.len(), 1);
        let asked = many.calls() - before;
        let max = crate::spec::limits::MAX_SKIPPED;
        // One tag list (read both to see that the version asked is not a
        // tag and for the highest; it gives every candidate's digest) and a
        // scan report per candidate, none cached here.
        assert_eq!(asked, 1 + max, "{asked} calls for {max} candidates");
    }
}

// --- The supply-chain gate (the input's `verify`) ---------------------------

mod signature_gate {
    use super::*;
    use crate::resolve::scan::Skipped;
    use crate::signature::Signatures;
    use crate::signature::fixtures::signed;

    const FAMILY_REPO: &str = "upbound/provider-family-aws";
    const S3: &str = "upbound/provider-aws-s3";

    fn digest_of(repository: &str, tag: &str) -> String {
        crate::oci::blob::sha256_digest(format!("{repository}:{tag}").as_bytes())
    }

    /// The blog registry with the images named signed by the key of seed 1.
    fn signing(images: &[(&str, &str)]) -> (MemoryRegistry, String) {
        let registry = blog_registry();
        let mut pem = String::new();
        for (repository, tag) in images {
            let digest = digest_of(repository, tag);
            let (key, signature) = signed(1, &digest);
            pem = key;
            registry.set_signatures(
                &digest,
                Signatures {
                    legacy: vec![signature],
                    ..Signatures::default()
                },
            );
        }
        (registry, pem)
    }

    async fn verified(
        registry: &MemoryRegistry,
        pem: &str,
        installed: Option<&dyn Installed>,
    ) -> Result<Resolution> {
        let spec: XrSpec = decode(json!({
            "registry": {"accountId": "123456789012", "region": "eu-west-2"},
            "packages": [package("Provider", S3, ">= 2.0.0")],
        }))
        .expect("spec");
        let input: Input = decode(json!({"verify": {"authorities": [
            {"name": "platform", "repositories": [FAMILY_REPO], "key": {"publicKey": pem}}
        ]}}))
        .expect("input");
        let settings =
            Settings::new(crate::spec::xr::XrRef::named("demo"), &spec, &input).expect("settings");
        Resolver::new(&settings, &spec, registry)
            .keeping(installed)
            .resolve()
            .await
    }

    #[tokio::test]
    async fn the_highest_signed_version_is_taken_and_ungated_repositories_are_not_asked() {
        let (registry, pem) = signing(&[(FAMILY_REPO, "v2.1.0")]);
        let r = verified(&registry, &pem, None).await.expect("resolves");
        assert_eq!(version_of(&r.graph, FAMILY_REPO), Some("v2.1.0"));
        assert_eq!(version_of(&r.graph, S3), Some("v2.2.0"), "not gated");
        assert_eq!(
            r.skipped["upbound-provider-family-aws"],
            vec![Skipped::new("v2.2.0", "unsigned")]
        );
    }

    #[tokio::test]
    async fn nothing_signed_blocks_a_dependency_and_an_installed_one_stays() {
        // Signed with another key: nothing passes.
        let (registry, _) = signing(&[(FAMILY_REPO, "v2.1.0"), (FAMILY_REPO, "v2.2.0")]);
        let (other, _) = signed(2, &digest_of(FAMILY_REPO, "v2.2.0"));
        let r = verified(&registry, &other, None).await.expect("resolves");
        assert_eq!(version_of(&r.graph, FAMILY_REPO), None);
        assert_eq!(version_of(&r.graph, S3), None, "waits for its dependency");
        assert_eq!(
            r.blocked[0].to_string(),
            "upbound-provider-family-aws is not installed: no version of upbound/provider-family-aws \
             passes the supply-chain gate: v2.2.0 (signature invalid: no authority's key verifies it); \
             v2.1.0 (signature invalid: no authority's key verifies it); waiting for it: upbound-provider-aws-s3"
        );
        let installed = InstalledFamily(PackageNode {
            repository: FAMILY_REPO.to_string(),
            kind: PackageKind::Provider,
            upstream: FAMILY.to_string(),
            name: "upbound-provider-family-aws".to_string(),
            version: "v2.1.0".to_string(),
            digest: digest_of(FAMILY_REPO, "v2.1.0"),
            depends_on: Default::default(),
            runtime_config_name: None,
        });
        let r = verified(&registry, &other, Some(&installed))
            .await
            .expect("resolves");
        assert_eq!(version_of(&r.graph, FAMILY_REPO), Some("v2.1.0"));
        assert!(r.blocked.is_empty());
        assert_eq!(r.kept.len(), 1, "kept, with a Warning");
    }

    /// The forms a keyless signature takes.
    #[derive(Clone, Copy, Debug)]
    enum Form {
        Legacy,
        MessageBundle,
        DsseBundle,
    }

    /// The blog registry with `keyless` signed keyless in `form` (the
    /// trusted root returned) and `keyed` signed by the key of seed 1 (its
    /// PEM).
    fn signing_keyless(form: Form, keyless: &str, keyed: &str) -> (MemoryRegistry, String, String) {
        let registry = blog_registry();
        let digest = digest_of(FAMILY_REPO, keyless);
        let made = crate::signature::fixtures::keyless_signed(&digest);
        let signatures = match form {
            Form::Legacy => Signatures {
                legacy: vec![made.legacy],
                ..Signatures::default()
            },
            Form::MessageBundle => Signatures {
                bundles: vec![made.message_bundle],
                ..Signatures::default()
            },
            Form::DsseBundle => Signatures {
                bundles: vec![made.dsse_bundle],
                ..Signatures::default()
            },
        };
        registry.set_signatures(&digest, signatures);
        let digest = digest_of(FAMILY_REPO, keyed);
        let (pem, legacy) = signed(1, &digest);
        registry.set_signatures(
            &digest,
            Signatures {
                legacy: vec![legacy],
                ..Signatures::default()
            },
        );
        (registry, made.root, pem)
    }

    async fn keyless_verified(
        registry: &MemoryRegistry,
        root: &str,
        pem: &str,
        issuer: &str,
        subject: &str,
    ) -> Resolution {
        let spec: XrSpec = decode(json!({
            "registry": {"accountId": "123456789012", "region": "eu-west-2"},
            "packages": [package("Provider", S3, ">= 2.0.0")],
        }))
        .expect("spec");
        let input: Input = decode(json!({"verify": {"authorities": [
            {"name": "key", "repositories": [FAMILY_REPO], "key": {"publicKey": pem}},
            {"name": "ci", "repositories": [FAMILY_REPO], "keyless": {"trustedRoot": root,
                "identities": [{"issuer": issuer, "subject": subject}]}},
        ]}}))
        .expect("input");
        let settings =
            Settings::new(crate::spec::xr::XrRef::named("demo"), &spec, &input).expect("settings");
        Resolver::new(&settings, &spec, registry)
            .resolve()
            .await
            .expect("resolves")
    }

    #[tokio::test]
    async fn keyless_the_right_identity_passes_and_a_wrong_one_is_skipped() {
        for form in [Form::Legacy, Form::MessageBundle, Form::DsseBundle] {
            keyless_form(form).await;
        }
    }

    async fn keyless_form(form: Form) {
        use crate::keyless::fixtures::{EMAIL, ISSUER};
        let (registry, root, pem) = signing_keyless(form, "v2.2.0", "v2.1.0");
        let r = keyless_verified(&registry, &root, &pem, ISSUER, EMAIL).await;
        assert_eq!(
            version_of(&r.graph, FAMILY_REPO),
            Some("v2.2.0"),
            "{form:?}"
        );
        assert!(!r.skipped.contains_key("upbound-provider-family-aws"));
        let wrong_issuer = keyless_verified(&registry, &root, &pem, "https://other.example", EMAIL);
        let wrong_subject = keyless_verified(&registry, &root, &pem, ISSUER, "bob@example.com");
        for r in [wrong_issuer.await, wrong_subject.await] {
            assert_eq!(
                version_of(&r.graph, FAMILY_REPO),
                Some("v2.1.0"),
                "{form:?}: the next one"
            );
            assert_eq!(
                r.skipped["upbound-provider-family-aws"],
                vec![Skipped::new(
                    "v2.2.0",
                    &format!(
                        "no matching identity (issuer {ISSUER}, subject {EMAIL}), for authority ci"
                    )
                )]
            );
        }
    }
}
