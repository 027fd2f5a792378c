//! Rollout decisions, call by call, against a small model of what
//! Crossplane writes on a package object (see [`Object`]); and a property
//! test over generated release histories and health timelines.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Value as Json, json};

use super::*;
use crate::function::observed::observe;
use crate::package::PackageKind;

const T0: u64 = 1_796_440_816;

fn digest(version: &str) -> String {
    let hex: String = version.bytes().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex:0<64}")
}

fn reference(name: &str, version: &str) -> String {
    format!("xpkg.upbound.io/upbound/{name}:{version}")
}

fn node(name: &str, version: &str, depends_on: &[&str]) -> PackageNode {
    PackageNode {
        repository: format!("upbound/{name}"),
        kind: PackageKind::Provider,
        upstream: format!("xpkg.upbound.io/upbound/{name}"),
        name: name.to_string(),
        version: version.to_string(),
        digest: digest(version),
        depends_on: depends_on.iter().map(|d| format!("upbound/{d}")).collect(),
        runtime_config_name: None,
    }
}

/// What Crossplane shows of one package object, in a few states.
#[derive(Clone, Debug)]
struct Object {
    at: String,
    /// The reference its status is for.
    current: String,
    generation: u64,
    /// Healthy=True, and since when its health has been what it is.
    healthy: bool,
    health_since: u64,
}

impl Object {
    fn on(at: &str) -> Self {
        Self {
            at: at.to_string(),
            current: at.to_string(),
            generation: 1,
            healthy: true,
            health_since: 0,
        }
    }

    fn to_json(&self) -> Json {
        let healthy = if self.healthy { "True" } else { "False" };
        let since = Timestamp::from_secs(self.health_since).to_string();
        json!({
            "apiVersion": "pkg.crossplane.io/v1", "kind": "Provider",
            "metadata": {"name": "p", "generation": self.generation},
            "spec": {"package": self.at},
            "status": {
                "currentIdentifier": self.current,
                "conditions": [
                    {"type": "Installed", "status": "True", "reason": "ActivePackageRevision",
                     "observedGeneration": self.generation},
                    {"type": "Healthy", "status": healthy, "reason": "R",
                     "observedGeneration": self.generation, "lastTransitionTime": since},
                ]
            }
        })
    }
}

fn policy(extra: Json) -> Upgrades {
    let mut fields = json!({"progressDeadline": "10m", "healthyGrace": "2m", "quarantine": "24h"});
    if let (Json::Object(fields), Json::Object(extra)) = (&mut fields, extra) {
        fields.extend(extra);
    }
    serde_json::from_value(fields).expect("a valid upgrades policy")
}

/// One call's world: the plan resolved for each package, what exists, and
/// what the status remembers.
struct World {
    policy: Upgrades,
    paused: bool,
    now: u64,
    nodes: Vec<PackageNode>,
    objects: BTreeMap<String, Object>,
    remembered: BTreeMap<String, Rollout>,
    quarantined: Vec<Quarantined>,
}

impl World {
    fn new(nodes: Vec<PackageNode>, on: &[(&str, &str)]) -> Self {
        Self {
            policy: policy(json!({})),
            paused: false,
            now: T0,
            nodes,
            objects: on
                .iter()
                .map(|(name, version)| (name.to_string(), Object::on(&reference(name, version))))
                .collect(),
            remembered: BTreeMap::new(),
            quarantined: Vec::new(),
        }
    }

    fn plan(&self) -> Vec<Planned> {
        let graph = Graph::new(self.nodes.clone()).expect("a valid graph");
        graph
            .install_order()
            .into_iter()
            .map(|n| Planned {
                name: package_resource_name(&n.name),
                object: json!({"apiVersion": "pkg.crossplane.io/v1", "kind": "Provider",
                               "metadata": {"name": n.name},
                               "spec": {"package": reference(&n.name, &n.version)}})
                .as_object()
                .cloned()
                .unwrap_or_default(),
                needs: Vec::new(),
            })
            .collect()
    }

    /// One call: decides, then carries the status into the next call as
    /// Crossplane would.
    fn call(&mut self) -> (Decisions, BTreeMap<String, String>) {
        let mut plan = self.plan();
        let graph = Graph::new(self.nodes.clone()).expect("a valid graph");
        let objects: BTreeMap<String, Json> = self
            .objects
            .iter()
            .map(|(name, o)| (package_resource_name(name), o.to_json()))
            .collect();
        let observed = observe(&objects);
        let decisions = Rollouts {
            policy: &self.policy,
            paused: self.paused,
            now: Timestamp::from_secs(self.now),
            observed: &observed,
            graph: &graph,
            remembered: &self.remembered,
            quarantined: &self.quarantined,
        }
        .decide(&mut plan);
        self.remembered = decisions.rollouts.clone();
        self.quarantined = decisions.quarantined.clone();
        let composed = plan
            .iter()
            .map(|p| {
                let name = p.object["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                (name, super::reference(p).unwrap_or_default().to_string())
            })
            .collect();
        (decisions, composed)
    }

    /// Crossplane applies what was composed: a changed `spec.package` is a
    /// new generation whose status is not for it yet.
    fn apply(&mut self, composed: &BTreeMap<String, String>) {
        for (name, at) in composed {
            match self.objects.get_mut(name) {
                Some(object) if object.at != *at => {
                    object.at = at.clone();
                    object.generation += 1;
                }
                Some(_) => {}
                None => {
                    let mut object = Object::on(at);
                    object.current = String::new();
                    self.objects.insert(name.clone(), object);
                }
            }
        }
    }

    /// Crossplane's package manager catches up: the status is for the spec,
    /// healthy unless the reference is in `broken`.
    fn settle(&mut self, broken: &BTreeSet<String>) {
        for object in self.objects.values_mut() {
            let healthy = !broken.contains(&object.at);
            if object.current != object.at || object.healthy != healthy {
                object.health_since = self.now;
            }
            object.current = object.at.clone();
            object.healthy = healthy;
        }
    }

    fn set_version(&mut self, name: &str, version: &str) {
        for n in &mut self.nodes {
            if n.name == name {
                n.version = version.to_string();
                n.digest = digest(version);
            }
        }
    }
}

#[test]
fn a_family_release_moves_the_family_first_and_s3_once_the_family_is_on_it() {
    let mut world = World::new(
        vec![node("family", "v2", &[]), node("s3", "v2", &["family"])],
        &[("family", "v1"), ("s3", "v1")],
    );
    let (first, composed) = world.call();
    assert_eq!(composed["family"], reference("family", "v2"));
    assert_eq!(
        composed["s3"],
        reference("s3", "v1"),
        "s3 waits for the family"
    );
    assert_eq!(first.rollouts["family"].phase, Phase::Progressing);
    assert_eq!(first.rollouts["s3"].phase, Phase::Pending);
    assert_eq!(first.moving, BTreeSet::from(["package-family".to_string()]));
    assert_eq!(first.condition.reason, "Progressing");
    assert_eq!(first.events.len(), 1, "{:?}", first.events);
    assert_eq!(first.wake, Some(Timestamp::from_secs(T0 + 600)));

    // Crossplane applies it; its status is not for v2 yet.
    world.apply(&composed);
    world.now += 5;
    let (second, composed) = world.call();
    assert_eq!(composed["family"], reference("family", "v2"));
    assert_eq!(composed["s3"], reference("s3", "v1"));
    assert!(second.events.is_empty(), "{:?}", second.events);
    assert!(
        second.moving.is_empty(),
        "already applied: {:?}",
        second.moving
    );

    // On v2: the family is done and S3 starts.
    world.settle(&BTreeSet::new());
    world.now += 30;
    let (third, composed) = world.call();
    assert_eq!(composed["s3"], reference("s3", "v2"));
    assert!(!third.rollouts.contains_key("family"));
    assert_eq!(third.rollouts["s3"].phase, Phase::Progressing);
    let reasons: Vec<&str> = third.events.iter().map(|e| e.reason).collect();
    assert_eq!(reasons, ["RolloutFinished", "RolloutStarted"]);

    world.apply(&composed);
    world.settle(&BTreeSet::new());
    world.now += 30;
    let (done, _) = world.call();
    assert!(done.rollouts.is_empty(), "{:?}", done.rollouts);
    assert_eq!(done.condition, Upgraded::default());
}

#[test]
fn a_release_that_never_turns_healthy_is_rolled_back_and_quarantined() {
    let mut world = World::new(vec![node("family", "v2", &[])], &[("family", "v1")]);
    let broken = BTreeSet::from([reference("family", "v2")]);
    let (_, composed) = world.call();
    world.apply(&composed);
    world.now += 10;
    world.settle(&broken);
    // Unhealthy, inside the grace: it waits, and asks to be called when
    // the grace ends.
    world.now += 60;
    let (waiting, composed) = world.call();
    assert_eq!(composed["family"], reference("family", "v2"));
    assert_eq!(waiting.wake, Some(Timestamp::from_secs(T0 + 10 + 120)));
    world.now = T0 + 10 + 120;
    let (rolled, composed) = world.call();
    assert_eq!(composed["family"], reference("family", "v1"), "back to v1");
    assert_eq!(
        rolled.moving,
        BTreeSet::from(["package-family".to_string()])
    );
    assert_eq!(rolled.rollouts["family"].phase, Phase::RolledBack);
    assert_eq!(rolled.quarantined.len(), 1);
    let q = &rolled.quarantined[0];
    assert_eq!((q.name.as_str(), q.version.as_str()), ("family", "v2"));
    assert_eq!(q.digest, digest("v2"));
    assert_eq!(q.until, Timestamp::from_secs(T0 + 130 + 24 * 3600));
    assert!(q.reason.contains("healthyGrace"), "{}", q.reason);
    assert_eq!(rolled.condition.reason, "RolledBack");
    let warnings: Vec<&Event> = rolled
        .events
        .iter()
        .filter(|e| e.severity == Severity::Warning)
        .collect();
    assert_eq!(warnings.len(), 1, "{:?}", rolled.events);

    // Back on v1; resolution skips v2 now, so the plan says v1 again.
    world.apply(&composed);
    world.settle(&broken);
    world.set_version("family", "v1");
    world.now += 30;
    let (back, composed) = world.call();
    assert_eq!(composed["family"], reference("family", "v1"));
    assert!(back.events.is_empty(), "{:?}", back.events);
    assert_eq!(
        back.condition.reason, "RolledBack",
        "shown while quarantined"
    );

    // The next release goes through.
    world.set_version("family", "v3");
    world.now += 30;
    let (next, composed) = world.call();
    assert_eq!(composed["family"], reference("family", "v3"));
    assert_eq!(next.rollouts["family"].phase, Phase::Progressing);
    assert_eq!(next.quarantined.len(), 1, "v2 stays quarantined");
}

#[test]
fn the_deadline_rolls_back_what_never_gets_there() {
    let mut world = World::new(vec![node("family", "v2", &[])], &[("family", "v1")]);
    let (_, composed) = world.call();
    world.apply(&composed);
    // Crossplane never gets to v2 (the status stays for v1).
    world.now = T0 + 599;
    let (inside, composed) = world.call();
    assert_eq!(composed["family"], reference("family", "v2"));
    assert!(inside.quarantined.is_empty());
    world.now = T0 + 600;
    let (past, composed) = world.call();
    assert_eq!(composed["family"], reference("family", "v1"));
    assert!(
        past.quarantined[0]
            .reason
            .contains("progressDeadline 10m0s"),
        "{:?}",
        past.quarantined
    );
}

#[test]
fn pause_windows_and_quarantine_hold_what_would_move() {
    let nodes = vec![node("family", "v2", &[])];
    let mut paused = World::new(nodes.clone(), &[("family", "v1")]);
    paused.paused = true;
    let (decisions, composed) = paused.call();
    assert_eq!(composed["family"], reference("family", "v1"));
    assert_eq!(decisions.condition.reason, "Paused");
    assert!(decisions.moving.is_empty() && decisions.events.is_empty());

    // T0 is a Saturday, 03:20 UTC; the window opens on Sunday at 02:00.
    let mut outside = World::new(nodes.clone(), &[("family", "v1")]);
    outside.policy =
        policy(json!({"windows": [{"days": ["Sun"], "start": "02:00", "duration": "2h"}]}));
    let (decisions, composed) = outside.call();
    assert_eq!(composed["family"], reference("family", "v1"));
    assert_eq!(decisions.condition.reason, "OutsideWindow");
    let opens = Timestamp::parse("2026-12-06T02:00:00Z").expect("a time");
    assert_eq!(decisions.wake, Some(opens));
    outside.now = opens.secs();
    let (decisions, composed) = outside.call();
    assert_eq!(composed["family"], reference("family", "v2"));
    assert_eq!(decisions.condition.reason, "Progressing");
    // Still pending since the first call.
    assert_eq!(
        decisions.rollouts["family"].since,
        Timestamp::from_secs(opens.secs())
    );

    let mut pinned = World::new(nodes, &[("family", "v1")]);
    pinned.quarantined = vec![Quarantined {
        name: "family".to_string(),
        version: "v2".to_string(),
        digest: digest("v2"),
        reason: "rolled back".to_string(),
        until: Timestamp::from_secs(T0 + 60),
    }];
    let (decisions, composed) = pinned.call();
    assert_eq!(composed["family"], reference("family", "v1"));
    assert_eq!(decisions.condition.reason, "RolledBack");
    assert_eq!(decisions.wake, Some(Timestamp::from_secs(T0 + 60)));
    pinned.now = T0 + 60;
    let (decisions, composed) = pinned.call();
    assert_eq!(composed["family"], reference("family", "v2"), "tried again");
    assert!(decisions.quarantined.is_empty());
}

#[test]
fn max_in_flight_bounds_what_moves_at_once() {
    let nodes = vec![
        node("a", "v2", &[]),
        node("b", "v2", &[]),
        node("c", "v2", &[]),
    ];
    let on = [("a", "v1"), ("b", "v1"), ("c", "v1")];
    for (max, moving) in [(1, 1), (2, 2), (5, 3)] {
        let mut world = World::new(nodes.clone(), &on);
        world.policy = policy(json!({"maxInFlight": max}));
        let (decisions, _) = world.call();
        assert_eq!(decisions.moving.len(), moving, "maxInFlight {max}");
    }
}

#[test]
fn first_installs_are_not_paced() {
    let mut world = World::new(
        vec![node("family", "v2", &[]), node("s3", "v2", &["family"])],
        &[("family", "v1")],
    );
    world.paused = true;
    let (decisions, composed) = world.call();
    assert_eq!(
        composed["s3"],
        reference("s3", "v2"),
        "a new package is not held"
    );
    assert_eq!(composed["family"], reference("family", "v1"));
    assert_eq!(decisions.rollouts.len(), 1);
}

#[test]
fn a_remembered_rollout_cannot_send_a_package_elsewhere() {
    // The status claims the family was on another path: the rollout does not
    // pass its checks as it is read (see record.rs), and one that is not
    // about where the object is or should go is ignored here.
    let mut world = World::new(vec![node("family", "v1", &[])], &[("family", "v1")]);
    world.remembered.insert(
        "family".to_string(),
        Rollout {
            from: reference("family", "v0"),
            to: reference("family", "v9"),
            phase: Phase::Progressing,
            since: Timestamp::from_secs(0),
        },
    );
    let (decisions, composed) = world.call();
    assert_eq!(composed["family"], reference("family", "v1"));
    assert!(decisions.rollouts.is_empty() && decisions.quarantined.is_empty());
}

/// A release history: for each step, the versions a chain a <- b <- c
/// resolve to (b's release k needs a's release k, c's needs b's), whether
/// each release is broken, and how much time passes.
#[derive(Clone, Debug)]
struct Step {
    release: Option<(usize, bool)>,
    advance: u64,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(
        (
            proptest::option::weighted(0.3, (0usize..3, proptest::bool::weighted(0.3))),
            prop_oneof![Just(5u64), Just(30), Just(200), Just(700)],
        )
            .prop_map(|(release, advance)| Step { release, advance }),
        1..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// At every call: no dependent moves ahead of the dependency its release
    /// needs, at most maxInFlight packages are in transition, and every
    /// package is on a release it was healthy on, or inside its deadline.
    #[test]
    fn rollouts_keep_their_promises(history in steps(), max in 1u32..3) {
        let names = ["a", "b", "c"];
        let mut released: Vec<Vec<(u32, bool)>> = vec![vec![(1, false)]; 3];
        let mut world = World::new(
            vec![node("a", "v1", &[]), node("b", "v1", &["a"]), node("c", "v1", &["b"])],
            &[("a", "v1"), ("b", "v1"), ("c", "v1")],
        );
        world.policy = policy(json!({"maxInFlight": max}));
        let deadline = world.policy.progress_deadline.as_secs();
        let mut broken: BTreeSet<String> = BTreeSet::new();
        // Since when each package has not been on a healthy release.
        let mut unsettled: BTreeMap<&str, u64> = BTreeMap::new();
        for step in history {
            if let Some((package, bad)) = step.release {
                let next = released[package].last().map_or(1, |(v, _)| v + 1);
                released[package].push((next, bad));
                if bad {
                    broken.insert(reference(names[package], &format!("v{next}")));
                }
            }
            // Resolution: the highest release not quarantined, that the
            // dependency's resolved release can serve.
            let mut resolved: Vec<u32> = Vec::new();
            for (i, name) in names.iter().enumerate() {
                let ceiling = if i == 0 { u32::MAX } else { resolved[i - 1] };
                let pick = released[i]
                    .iter()
                    .map(|(v, _)| *v)
                    .filter(|v| *v <= ceiling)
                    .filter(|v| {
                        let version = format!("v{v}");
                        !world.quarantined.iter().any(|q| {
                            q.holds(name, &version, &digest(&version), Timestamp::from_secs(world.now))
                        })
                    })
                    .max()
                    .unwrap_or(1);
                resolved.push(pick);
                world.set_version(name, &format!("v{pick}"));
            }
            let before: BTreeMap<String, String> =
                world.objects.iter().map(|(n, o)| (n.clone(), o.at.clone())).collect();
            let (decisions, composed) = world.call();
            let in_transition = decisions
                .rollouts
                .values()
                .filter(|r| matches!(r.phase, Phase::Progressing))
                .count();
            prop_assert!(in_transition <= max as usize, "{:?}", decisions.rollouts);
            // A dependent that starts moving does so only with its
            // dependency on a release at least as new, and healthy.
            for (i, name) in names.iter().enumerate().skip(1) {
                if composed[*name] != before[*name] {
                    let version: u32 = composed[*name].rsplit(":v").next().and_then(|v| v.parse().ok()).unwrap_or(0);
                    let dependency = &world.objects[names[i - 1]];
                    let on: u32 = dependency.at.rsplit(":v").next().and_then(|v| v.parse().ok()).unwrap_or(0);
                    let back = decisions.rollouts.get(*name).is_some_and(|r| r.phase == Phase::RolledBack);
                    prop_assert!(
                        back || (on >= version && dependency.healthy && dependency.current == dependency.at),
                        "{name} moved to v{version} with {} on v{on}", names[i - 1]
                    );
                }
            }
            world.apply(&composed);
            // Crossplane calls again at the latest when the answer's TTL,
            // capped at the wake, runs out.
            let advance = decisions.wake.map_or(step.advance, |w| {
                step.advance.min(w.secs().saturating_sub(world.now).max(1))
            });
            world.now += advance;
            world.settle(&broken);
            for (name, object) in &world.objects {
                let name = names.iter().find(|n| **n == name.as_str()).copied().unwrap_or("a");
                if object.healthy && object.current == object.at {
                    unsettled.remove(name);
                } else {
                    let since = *unsettled.entry(name).or_insert(world.now - advance);
                    // Rolled back at its deadline, to a release it was
                    // healthy on.
                    prop_assert!(
                        world.now - since <= deadline,
                        "{name} unsettled since {since}, now {}", world.now
                    );
                }
            }
        }
    }
}

#[test]
fn durations_in_messages_read_as_go_writes_them() {
    assert_eq!(duration::format(Duration::from_secs(600)), "10m0s");
}
