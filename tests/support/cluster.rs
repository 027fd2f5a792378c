//! A reconcile simulator: plays Crossplane and the cluster around the
//! function. Each round sends the XR and what exists as observed state, then
//! applies the response the way Crossplane would (nothing on a Fatal; the
//! XR's status and conditions; composed resources created, updated, and
//! deleted when no longer desired), and advances the status of everything
//! that existed before the round as its controller would.
//!
//! Package objects advance the way Crossplane v2.2's package manager moves
//! them (`internal/controller/pkg/manager/reconciler.go`): the first pass
//! after `spec.package` changes activates a revision of the new reference
//! (`currentIdentifier`, `currentRevision`, `Installed=True`) whose health
//! is not known yet (`Healthy=False`, `Package revision health is
//! "Unknown"`); the next reports it healthy, unless it is broken. Every
//! condition carries the `metadata.generation` it was written for, which
//! the API server bumps when `spec` changes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use function_ecr_packages::function::{Clock, Function};
use function_ecr_packages::names::dns_label;
use function_ecr_packages::oci::blob::sha256_digest;
use function_ecr_packages::proto::v1::{
    Capability, Ready, RequestMeta, Resource, Resources, RunFunctionRequest, RunFunctionResponse,
    Severity, State, resource_selector::Match,
};
use function_ecr_packages::sdk::structs::{json_to_struct, struct_to_json};
use function_ecr_packages::spec::policy::glob_match;
use serde_json::{Value as Json, json};

/// provider-aws's IAM definitions, cluster-scoped and namespaced.
const IAM_DEFINITIONS: [&str; 6] = [
    "roles.iam.aws.upbound.io",
    "policies.iam.aws.upbound.io",
    "rolepolicyattachments.iam.aws.upbound.io",
    "roles.iam.aws.m.upbound.io",
    "policies.iam.aws.m.upbound.io",
    "rolepolicyattachments.iam.aws.m.upbound.io",
];

/// The XR's activation policy as Crossplane reports it once every IAM
/// definition is active: what a request that is not about activation
/// observes, so its IAM objects are composed on the first call.
pub fn active_iam_policy() -> (&'static str, Json) {
    (
        "activation-policy",
        json!({
            "apiVersion": "apiextensions.crossplane.io/v1alpha1",
            "kind": "ManagedResourceActivationPolicy",
            "metadata": {"name": "ecr-packages-xr"},
            "spec": {"activate": IAM_DEFINITIONS},
            "status": {
                "activated": IAM_DEFINITIONS,
                "conditions": [{"type": "Healthy", "status": "True", "reason": "Running"}],
            },
        }),
    )
}

/// A managed resource definition as Crossplane reports it once its CRD is
/// created and established (or, with `established` false, inactive).
pub fn definition(name: &str, established: bool) -> Json {
    let (state, status, reason) = if established {
        ("Active", "True", "EstablishedManagedResource")
    } else {
        ("Inactive", "False", "InactiveManagedResource")
    };
    json!({
        "apiVersion": "apiextensions.crossplane.io/v1alpha1",
        "kind": "ManagedResourceDefinition",
        "metadata": {"name": name},
        "spec": {"state": state},
        "status": {"conditions": [{"type": "Established", "status": status, "reason": reason}]},
    })
}

pub struct Cluster {
    pub function: Arc<Function>,
    pub xr: Json,
    pub input: Json,
    /// Composed resources by composition resource name, as in the cluster.
    pub observed: BTreeMap<String, Json>,
    /// `metadata.name`s whose controllers never report healthy.
    pub broken: BTreeSet<String>,
    /// Package references (`spec.package`) that never become healthy: a
    /// release whose runtime never reports healthy, wherever it is used.
    pub broken_packages: BTreeSet<String>,
    /// `metadata.name`s whose controllers have not acted yet: the API
    /// server still bumps their generation when `spec` changes, and their
    /// status stays as it was, describing the spec before.
    pub stalled: BTreeSet<String>,
    /// Crossplane's package Lock, sent when the function asks for it. With
    /// `None` the simulated Crossplane does not advertise required
    /// resources, and so is never asked.
    pub lock: Option<Json>,
    /// Objects still in the cluster though no longer composed (deleted, not
    /// gone), sent when asked for by kind and name.
    pub lingering: Vec<Json>,
    /// Objects in the cluster that this XR did not compose (another XR's,
    /// or installed by hand), sent when asked for by kind and name.
    pub existing: Vec<Json>,
    /// Managed resource definitions each package object (by
    /// `metadata.name`) installs, once a revision of it is current. The
    /// IAM definitions of provider-aws are always there, as if its IAM
    /// provider were installed beside the XR.
    pub definitions: BTreeMap<String, Vec<String>>,
    pub rounds: usize,
    /// RunFunction calls made, over all rounds.
    pub calls: usize,
}

/// What one round did.
pub struct Round {
    pub response: RunFunctionResponse,
    pub created: Vec<String>,
    pub deleted: Vec<String>,
}

impl Round {
    pub fn desired(&self) -> BTreeMap<String, Json> {
        desired_of(&self.response)
    }

    pub fn results(&self, severity: Severity) -> Vec<String> {
        self.response
            .results
            .iter()
            .filter(|r| r.severity == severity as i32)
            .map(|r| r.message.clone())
            .collect()
    }

    /// Panics with the Fatal results, if there are any.
    pub fn assert_no_fatal(&self) {
        let fatal = self.results(Severity::Fatal);
        assert!(fatal.is_empty(), "{fatal:?}");
    }

    pub fn condition(&self, kind: &str) -> Option<(i32, String, String)> {
        self.response
            .conditions
            .iter()
            .find(|c| c.r#type == kind)
            .map(|c| {
                (
                    c.status,
                    c.reason.clone(),
                    c.message.clone().unwrap_or_default(),
                )
            })
    }

    /// Whether the XR would be Ready: every composed resource ready and the
    /// composite not held back by the function.
    pub fn xr_ready(&self) -> bool {
        let desired = self.response.desired.as_ref().expect("desired");
        let composite_ready = desired
            .composite
            .as_ref()
            .is_none_or(|c| c.ready != Ready::False as i32);
        composite_ready
            && desired
                .resources
                .values()
                .all(|r| r.ready == Ready::True as i32)
    }
}

/// `input` with allowlists that admit the IAM the test XRs ask for (an EKS
/// OIDC provider and the `eks-nodes` node role), where it sets none: the
/// secure default refuses any IAM value an XR sets.
pub fn allowing_test_iam(mut input: Json) -> Json {
    let iam = &mut input["iam"];
    if iam.get("allowedOidcProviders").is_none() {
        iam["allowedOidcProviders"] = json!(["oidc.eks.*.amazonaws.com/id/*"]);
    }
    if iam.get("allowedNodeRoleNames").is_none() {
        iam["allowedNodeRoleNames"] = json!(["eks-nodes"]);
    }
    input
}

/// The ImageConfig `name` the function composes for a mirror: images under
/// `prefix` are pulled from `rewrite` instead.
pub fn image_config(name: &str, prefix: &str, rewrite: &str) -> Json {
    json!({"apiVersion": "pkg.crossplane.io/v1beta1", "kind": "ImageConfig",
           "metadata": {"name": name},
           "spec": {"matchImages": [{"type": "Prefix", "prefix": prefix}],
                    "rewriteImage": {"prefix": rewrite}}})
}

/// The string at `pointer` in `object`, or "" when there is none.
fn str_at<'a>(object: &'a Json, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Json::as_str)
        .unwrap_or_default()
}

/// The generation the API server gives `object` replacing `previous`:
/// bumped when `spec` changes.
fn next_generation(previous: &Json, object: &Json) -> u64 {
    let generation = previous
        .pointer("/metadata/generation")
        .and_then(Json::as_u64)
        .unwrap_or(1);
    if previous.get("spec") == object.get("spec") {
        generation
    } else {
        generation + 1
    }
}

/// The package revision Crossplane v2.2 creates for `package` of the
/// package object `name`: `xpkg.FriendlyID(name, digest hex)`, the DNS
/// label of `<name cut to 50>-<first 12 hex of the digest>`. A tag's digest
/// is not known here, so a hash of the reference stands in for it.
pub fn revision_name(name: &str, package: &str) -> String {
    let digest = match package.split_once("@sha256:") {
        Some((_, hex)) => hex.to_string(),
        None => sha256_digest(package.as_bytes())["sha256:".len()..].to_string(),
    };
    let name: String = name.chars().take(50).collect();
    let hex: String = digest.chars().take(12).collect();
    dns_label(&format!("{name}-{hex}"))
}

pub fn desired_of(response: &RunFunctionResponse) -> BTreeMap<String, Json> {
    response
        .desired
        .as_ref()
        .map(|d| {
            d.resources
                .iter()
                .filter_map(|(k, r)| r.resource.as_ref().map(|s| (k.clone(), struct_to_json(s))))
                .collect()
        })
        .unwrap_or_default()
}

impl Cluster {
    pub fn new(function: Function, xr: Json, input: Json) -> Self {
        Self {
            function: Arc::new(function),
            xr,
            input,
            observed: BTreeMap::new(),
            broken: BTreeSet::new(),
            broken_packages: BTreeSet::new(),
            stalled: BTreeSet::new(),
            lock: None,
            lingering: Vec::new(),
            existing: Vec::new(),
            definitions: BTreeMap::new(),
            rounds: 0,
            calls: 0,
        }
    }

    pub fn request(&self) -> RunFunctionRequest {
        let resources = self
            .observed
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    Resource {
                        resource: json_to_struct(v),
                        ..Default::default()
                    },
                )
            })
            .collect();
        RunFunctionRequest {
            meta: Some(RequestMeta {
                tag: format!("round-{}", self.rounds),
                capabilities: if self.lock.is_some() {
                    vec![Capability::RequiredResources as i32]
                } else {
                    vec![]
                },
            }),
            observed: Some(State {
                composite: Some(Resource {
                    resource: json_to_struct(&self.xr),
                    ..Default::default()
                }),
                resources,
            }),
            desired: Some(State::default()),
            input: json_to_struct(&self.input),
            ..Default::default()
        }
    }

    /// Calls the function the way Crossplane does: again with what it
    /// asks for, until two calls in a row ask for the same (at most 5).
    async fn run(&mut self) -> RunFunctionResponse {
        let mut request = self.request();
        let mut asked = None;
        for _ in 0..5 {
            self.calls += 1;
            let response = self.function.compose(request.clone()).await;
            let fatal = response
                .results
                .iter()
                .any(|r| r.severity == Severity::Fatal as i32);
            if fatal || response.requirements == asked {
                return response;
            }
            asked.clone_from(&response.requirements);
            request.required_resources = response
                .requirements
                .iter()
                .flat_map(|r| &r.resources)
                .map(|(name, selector)| {
                    let Some(Match::MatchName(wanted)) = &selector.r#match else {
                        return (name.clone(), Resources::default());
                    };
                    let definitions = self.definitions_in_cluster();
                    let items = self
                        .lock
                        .iter()
                        .chain(&self.lingering)
                        .chain(&self.existing)
                        .chain(&definitions)
                        .filter(|o| {
                            str_at(o, "/kind") == selector.kind
                                && str_at(o, "/metadata/name") == wanted
                        })
                        .map(|o| Resource {
                            resource: json_to_struct(o),
                            ..Default::default()
                        })
                        .collect();
                    (name.clone(), Resources { items })
                })
                .collect();
        }
        panic!("requirements did not stabilize after 5 calls");
    }

    pub async fn reconcile(&mut self) -> Round {
        self.rounds += 1;
        let response = self.run().await;
        let fatal = response
            .results
            .iter()
            .any(|r| r.severity == Severity::Fatal as i32);
        if fatal {
            return Round {
                response,
                created: vec![],
                deleted: vec![],
            };
        }
        self.apply_composite(&response);
        let desired = desired_of(&response);
        let before: BTreeSet<String> = self.observed.keys().cloned().collect();
        let deleted: Vec<String> = before
            .iter()
            .filter(|k| !desired.contains_key(*k))
            .cloned()
            .collect();
        let created: Vec<String> = desired
            .keys()
            .filter(|k| !before.contains(*k))
            .cloned()
            .collect();
        let mut next = BTreeMap::new();
        for (name, mut object) in desired {
            match self.observed.get(&name) {
                Some(previous) => {
                    object["metadata"]["generation"] = json!(next_generation(previous, &object));
                    let stalled = self.stalled.contains(str_at(&object, "/metadata/name"));
                    object["status"] = match previous.get("status") {
                        Some(status) if stalled => status.clone(),
                        _ if stalled => json!({}),
                        _ => self.settled_status(previous, &object),
                    };
                }
                // Created: the API server's first generation, no status yet.
                None => object["metadata"]["generation"] = json!(1),
            }
            next.insert(name, object);
        }
        self.observed = next;
        Round {
            response,
            created,
            deleted,
        }
    }

    /// Runs rounds until nothing is created or deleted and the XR is ready,
    /// at most `limit`; returns every round.
    pub async fn settle(&mut self, limit: usize) -> Vec<Round> {
        let mut rounds = Vec::new();
        for _ in 0..limit {
            let round = self.reconcile().await;
            let done = round.created.is_empty() && round.deleted.is_empty() && round.xr_ready();
            rounds.push(round);
            if done {
                break;
            }
        }
        rounds
    }

    /// The status a controller reports once it has acted on `object`,
    /// whose status was `previous`'s.
    fn settled_status(&self, previous: &Json, object: &Json) -> Json {
        let name = str_at(object, "/metadata/name");
        let group = str_at(object, "/apiVersion");
        let kind = str_at(object, "/kind");
        if group.starts_with("pkg.crossplane.io/") && kind != "ImageConfig" {
            return self.package_status(previous, object);
        }
        if kind == "ManagedResourceActivationPolicy" {
            return self.activation_status(object);
        }
        let ok = if self.broken.contains(name) {
            "False"
        } else {
            "True"
        };
        if group.contains("aws.") || group.starts_with("protection.crossplane.io/") {
            json!({"conditions": [
                {"type": "Synced", "status": "True", "reason": "ReconcileSuccess"},
                {"type": "Ready", "status": ok, "reason": if ok == "True" { "Available" } else { "Creating" }}
            ]})
        } else {
            json!({})
        }
    }

    /// One pass of Crossplane's activation policy controller: every
    /// definition in the cluster that an entry matches (Go's
    /// `filepath.Match`) is activated and listed, sorted.
    fn activation_status(&self, policy: &Json) -> Json {
        let entries: Vec<&str> = policy
            .pointer("/spec/activate")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
            .collect();
        let activated: BTreeSet<&str> = self
            .installed_definitions()
            .into_iter()
            .filter(|d| entries.iter().any(|e| glob_match(e, d)))
            .collect();
        json!({
            "activated": activated,
            "conditions": [{"type": "Healthy", "status": "True", "reason": "Running"}],
        })
    }

    /// Every definition in the cluster as an object: established once an
    /// observed activation policy lists it activated.
    fn definitions_in_cluster(&self) -> Vec<Json> {
        let activated: BTreeSet<&str> = self
            .observed
            .values()
            .filter(|o| str_at(o, "/kind") == "ManagedResourceActivationPolicy")
            .filter_map(|o| o.pointer("/status/activated").and_then(Json::as_array))
            .flatten()
            .filter_map(Json::as_str)
            .collect();
        self.installed_definitions()
            .into_iter()
            .map(|name| definition(name, activated.contains(name)))
            .collect()
    }

    /// The definitions in the cluster: provider-aws's IAM ones, and those
    /// of every package object on a current revision.
    fn installed_definitions(&self) -> Vec<&str> {
        let mut definitions: Vec<&str> = IAM_DEFINITIONS.to_vec();
        for object in self.observed.values() {
            let current = str_at(object, "/status/currentIdentifier");
            if current.is_empty() || current != str_at(object, "/spec/package") {
                continue;
            }
            let name = str_at(object, "/metadata/name");
            if let Some(of_package) = self.definitions.get(name) {
                definitions.extend(of_package.iter().map(String::as_str));
            }
        }
        definitions
    }

    /// One pass of Crossplane v2.2's package manager over a package object:
    /// a new `spec.package` gets an active revision of unknown health; a
    /// revision already current reports its health.
    fn package_status(&self, previous: &Json, object: &Json) -> Json {
        let name = str_at(object, "/metadata/name");
        let package = str_at(object, "/spec/package");
        let generation = object["metadata"]["generation"].clone();
        let condition = |kind: &str, status: &str, reason: &str, message: Option<&str>| {
            let mut c = json!({"type": kind, "status": status, "reason": reason,
                               "observedGeneration": generation});
            if let Some(message) = message {
                c["message"] = json!(message);
            }
            c
        };
        let installed = condition("Installed", "True", "ActivePackageRevision", None);
        let healthy = if str_at(previous, "/status/currentIdentifier") != package {
            // reconciler.go: the revision was just created and activated;
            // its own controller has not reported on it yet.
            condition(
                "Healthy",
                "False",
                "UnhealthyPackageRevision",
                Some("Package revision health is \"Unknown\""),
            )
        } else if self.broken.contains(name) || self.broken_packages.contains(package) {
            condition(
                "Healthy",
                "False",
                "UnhealthyPackageRevision",
                Some("Package runtime health is \"False\""),
            )
        } else {
            condition("Healthy", "True", "HealthyPackageRevision", None)
        };
        json!({
            "currentIdentifier": package,
            "currentRevision": revision_name(name, package),
            "resolvedPackage": self.resolved(package),
            "conditions": [installed, healthy],
        })
    }

    /// `spec.package` as Crossplane pulls it: rewritten by the observed
    /// ImageConfig with the longest matching prefix, if any.
    fn resolved(&self, package: &str) -> String {
        self.observed
            .values()
            .filter(|o| str_at(o, "/kind") == "ImageConfig")
            .filter_map(|o| {
                let prefix = str_at(o, "/spec/matchImages/0/prefix");
                let rewrite = o.pointer("/spec/rewriteImage/prefix")?.as_str()?;
                package
                    .strip_prefix(prefix)
                    .filter(|_| !prefix.is_empty())
                    .map(|rest| (prefix.len(), format!("{rewrite}{rest}")))
            })
            .max_by_key(|(len, _)| *len)
            .map_or_else(|| package.to_string(), |(_, resolved)| resolved)
    }

    /// Crossplane applies the desired composite's status and the function's
    /// conditions to the XR.
    fn apply_composite(&mut self, response: &RunFunctionResponse) {
        if let Some(status) = response
            .desired
            .as_ref()
            .and_then(|d| d.composite.as_ref())
            .and_then(|c| c.resource.as_ref())
            .map(struct_to_json)
            .and_then(|c| c.get("status").cloned())
            && let Some(fields) = status.as_object()
        {
            // Server-side apply: what the function no longer writes goes.
            self.xr["status"] = Json::Object(fields.clone());
        }
        let conditions: Vec<Json> = response
            .conditions
            .iter()
            .map(|c| {
                let status = match c.status {
                    2 => "True",
                    3 => "False",
                    _ => "Unknown",
                };
                json!({"type": c.r#type, "status": status, "reason": c.reason, "message": c.message.clone().unwrap_or_default()})
            })
            .collect();
        if !conditions.is_empty() {
            self.xr["status"]["conditions"] = Json::Array(conditions);
        }
    }
}

/// Validates objects against the CRDs of the releases under test, which
/// `scripts/crds` fetches through the Go module proxy into
/// `~/.cache/function-ecr-packages/crds/NAME@VERSION/`: every Crossplane
/// version the function is tested against, and provider-aws. An object is
/// checked against its kind's schema in every release of the project that
/// defines the kind (a Provider against each Crossplane version's).
///
/// `load` runs `scripts/crds`, which answers from the cache at once and
/// fetches with Go what is missing. Where it cannot (no `go` on PATH, no
/// network), validation is skipped with a message naming `scripts/crds`,
/// unless `CRDS_REQUIRED=1` (set by `scripts/test`), when that fails.
pub struct Schemas {
    /// `None` when validation is skipped.
    releases: Option<Vec<Release>>,
}

/// The CRDs of one release, e.g. `crossplane@v2.2.0`.
struct Release {
    name: String,
    /// The project, e.g. `crossplane`: a kind is checked against every
    /// release of the project that defines it.
    project: String,
    by_gvk: BTreeMap<(String, String), Schema>,
}

struct Schema {
    json: Json,
    validator: std::sync::OnceLock<jsonschema::Validator>,
}

impl Schemas {
    pub fn load() -> Self {
        match Self::fetched() {
            Ok(releases) => Self {
                releases: Some(releases),
            },
            Err(why) if std::env::var_os("CRDS_REQUIRED").is_some_and(|v| v != "0") => {
                panic!("the CRD schemas are required (CRDS_REQUIRED) but {why}")
            }
            Err(why) => {
                // Past the test harness's capture, so a passing test shows it.
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED validation against the CRDs: {why}"
                );
                Self { releases: None }
            }
        }
    }

    /// The releases validated against, e.g. `crossplane@v2.2.0`; empty when
    /// validation is skipped.
    pub fn releases(&self) -> Vec<&str> {
        self.releases
            .iter()
            .flatten()
            .map(|r| r.name.as_str())
            .collect()
    }

    /// The CRDs of every release `scripts/crds` names, fetching what is
    /// not cached.
    fn fetched() -> Result<Vec<Release>, String> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/crds");
        let output = std::process::Command::new("bash")
            .arg(&script)
            .arg("--quiet")
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        match output.status.code() {
            Some(0) => {}
            Some(2) => {
                return Err(
                    "they are not in ~/.cache/function-ecr-packages/crds and there is no `go` \
                     on PATH to fetch them; run scripts/crds where Go is"
                        .into(),
                );
            }
            _ => {
                return Err(format!(
                    "scripts/crds failed ({}); run scripts/crds to see why",
                    output.status
                ));
            }
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let mut releases = Vec::new();
        for line in stdout.lines() {
            let (name, dir) = line
                .split_once('=')
                .ok_or_else(|| format!("scripts/crds printed {line:?}, not NAME@VERSION=DIR"))?;
            let project = name.split('@').next().unwrap_or(name).to_string();
            let by_gvk = Self::read_dir(Path::new(dir))?;
            if by_gvk.is_empty() {
                return Err(format!("no CRDs in {dir}"));
            }
            releases.push(Release {
                name: name.to_string(),
                project,
                by_gvk,
            });
        }
        if releases.is_empty() {
            return Err("scripts/crds named no release".into());
        }
        Ok(releases)
    }

    /// `(apiVersion, kind)` -> the schema of every CRD version in `dir`.
    fn read_dir(dir: &Path) -> Result<BTreeMap<(String, String), Schema>, String> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| format!("reading {}: {e}", dir.display()))?
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().and_then(|e| e.to_str()) == Some("yaml"))
            .collect();
        paths.sort();
        let mut by_gvk = BTreeMap::new();
        for path in paths {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            let crd: Json =
                serde_norway::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            let group = str_at(&crd, "/spec/group");
            let kind = str_at(&crd, "/spec/names/kind");
            for version in crd
                .pointer("/spec/versions")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
            {
                let name = str_at(version, "/name");
                if let Some(schema) = version.pointer("/schema/openAPIV3Schema") {
                    by_gvk.insert(
                        (format!("{group}/{name}"), kind.to_string()),
                        Schema {
                            json: schema.clone(),
                            validator: std::sync::OnceLock::new(),
                        },
                    );
                }
            }
        }
        Ok(by_gvk)
    }

    /// Panics with every schema violation of `object`, in every release
    /// that defines its kind, and when a release of that project lacks it.
    /// Does nothing when validation is skipped.
    pub fn validate(&self, object: &Json) {
        let Some(releases) = &self.releases else {
            return;
        };
        let api_version = str_at(object, "/apiVersion");
        let kind = str_at(object, "/kind");
        let key = (api_version.to_string(), kind.to_string());
        let projects: BTreeSet<&str> = releases
            .iter()
            .filter(|r| r.by_gvk.contains_key(&key))
            .map(|r| r.project.as_str())
            .collect();
        assert!(
            !projects.is_empty(),
            "no CRD for {api_version} {kind} in {:?}",
            self.releases()
        );
        let mut errors = Vec::new();
        for release in releases
            .iter()
            .filter(|r| projects.contains(r.project.as_str()))
        {
            let Some(schema) = release.by_gvk.get(&key) else {
                errors.push(format!("{}: no CRD for {api_version} {kind}", release.name));
                continue;
            };
            let validator = schema.validator.get_or_init(|| {
                jsonschema::validator_for(&schema.json).unwrap_or_else(|e| {
                    panic!("{}: the schema of {api_version} {kind}: {e}", release.name)
                })
            });
            errors.extend(
                validator
                    .iter_errors(object)
                    .map(|e| format!("{}: {} at {}", release.name, e, e.instance_path())),
            );
        }
        assert!(
            errors.is_empty(),
            "{api_version} {kind} violates its CRD: {errors:?}\n{object:#}"
        );
    }
}

/// A clock a test moves by hand: rollout deadlines, grace periods, windows
/// and quarantines are measured on it.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<std::sync::Mutex<SystemTime>>);

impl ManualClock {
    pub fn at(time: SystemTime) -> Self {
        Self(Arc::new(std::sync::Mutex::new(time)))
    }

    pub fn advance(&self, by: std::time::Duration) {
        let mut now = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }

    pub fn set(&self, time: SystemTime) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = time;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
