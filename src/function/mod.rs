//! The story of one RunFunction call: read what is asked, resolve it against
//! the registry, compose it, hold back what is not yet installable, report.

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;

mod activation;
mod admission;
mod leaving;
mod memo;
mod memory;
mod observed;
mod ownership;
pub mod package_lock;
mod report;
mod rollout;

use self::activation::Inactive;
use self::admission::{Admission, Desired, Gate, PlanScope};
use self::leaving::Leaving;
pub use self::memo::MemoCounts;
use self::memo::{DEFAULT_MEMO_BYTES, Memo};
use self::memory::{Previous, Recollection};
use self::observed::ObservedResources;
use self::ownership::{Adoption, Ownership};
use self::package_lock::Lock;
use self::report::Report;
pub use self::rollout::{Clock, SystemClock};
use self::rollout::{Decisions, Rollouts, Severity, Timestamp};
use crate::compose;
use crate::error::{Error, Result};
use crate::proto::v1::{RunFunctionRequest, RunFunctionResponse};
use crate::registry::Connector;
use crate::registry::cache::{DEFAULT_TAG_TTL, trusted_until};
use crate::registry::connector::EcrConnector;
use crate::registry::credentials::AwsCredentials;
use crate::registry::seen::SeenRegistries;
use crate::resolve::graph::Graph;
use crate::resolve::{Hints, Quarantine, Release, Resolution, resolve_within};
use crate::sdk::{Request, Response};
use crate::spec::xr::XrRef;
use crate::spec::{Input, Settings, XrSpec};

/// Crossplane gives a reconcile two minutes; resolution gets a quarter of
/// that so a slow registry still leaves time to apply what we return.
pub const RESOLVE_DEADLINE: Duration = Duration::from_secs(30);

/// A Fatal answer (nothing composed) is cached this long.
const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// While packages wait for their dependencies or the registry is being
/// retried, Crossplane calls again at least this often.
const CONVERGING_TTL: Duration = Duration::from_secs(15);

/// The shortest TTL a rollout's wake asks for: a deadline that has just
/// passed is acted on in the next call, not in a busy loop.
const MIN_WAKE: Duration = Duration::from_secs(1);

/// Runs the composition. One instance serves every call for the life of the
/// process, so it owns the registry clients and caches that make warm
/// reconciles free.
pub struct Function {
    connector: Arc<dyn Connector>,
    deadline: Duration,
    memo: Memo,
    /// Registries read successfully: with no `allowedRegistries`, the
    /// status stands in only for one of these.
    seen: SeenRegistries,
    /// Rollout deadlines, grace periods, windows and quarantines are
    /// measured on it.
    clock: Arc<dyn Clock>,
}

impl Default for Function {
    fn default() -> Self {
        Self::new()
    }
}

impl Function {
    /// A function that reads AWS ECR.
    pub fn new() -> Self {
        Self::with_connector(Arc::new(EcrConnector::new()))
    }

    pub fn with_connector(connector: Arc<dyn Connector>) -> Self {
        Self {
            connector,
            deadline: RESOLVE_DEADLINE,
            memo: Memo::new(DEFAULT_MEMO_BYTES),
            seen: SeenRegistries::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Reads the time from `clock` (tests drive rollouts with their own).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Keeps the last answer per XR within `budget_bytes` (0 keeps none).
    pub fn with_memo(mut self, budget_bytes: u64) -> Self {
        self.memo = Memo::new(budget_bytes);
        self
    }

    /// Calls answered from the last answer for their XR, and calls composed.
    pub fn memo_counts(&self) -> MemoCounts {
        self.memo.counts()
    }

    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Composes one request into its response. Never panics and never fails:
    /// every problem becomes a result on the response.
    pub async fn compose(&self, mut request: RunFunctionRequest) -> RunFunctionResponse {
        // Asked exactly as last time, with what was read still trusted: the
        // same answer, under this call's tag.
        let asked = if self.memo.is_enabled() {
            Memo::asked(&mut request)
        } else {
            None
        };
        if let Some(mut kept) = asked.as_ref().and_then(|a| self.memo.answer(a)) {
            if let (Some(meta), Some(tag)) = (kept.meta.as_mut(), request.meta.as_ref()) {
                meta.tag.clone_from(&tag.tag);
            }
            return kept;
        }
        let request = Request::new(request);
        let mut response = Response::to(request.proto());
        // A panic is a bug, never the caller's fault; it still owes Crossplane
        // an answer, and a Fatal one applies nothing, so nothing is lost.
        let (outcome, trusted) =
            trusted_until(AssertUnwindSafe(self.reconcile(&request, &mut response)).catch_unwind())
                .await;
        let outcome = match outcome {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(error)) => {
                tracing::warn!(%error, "composition failed");
                response.fatal(error.to_string());
                Outcome::FAILED
            }
            Err(_) => {
                tracing::error!("composition panicked");
                response.fatal("internal error in function-ecr-packages (a bug; see its logs)");
                Outcome::FAILED
            }
        };
        response.set_ttl(outcome.ttl);
        let response = response.finish();
        if let Some(asked) = asked {
            if outcome.reusable {
                let mut valid_for = trusted.map_or(DEFAULT_TAG_TTL, |until| {
                    until.saturating_duration_since(std::time::Instant::now())
                });
                if let Some(wake) = outcome.wake {
                    valid_for = valid_for.min(wake);
                }
                self.memo.keep(asked, &response, valid_for);
            } else {
                self.memo.forget(&asked);
            }
        }
        response
    }

    /// Composes the response.
    async fn reconcile(&self, request: &Request, response: &mut Response) -> Result<Outcome> {
        // What the platform team allows (input) and what the requester asks
        // for (XR), checked against it before anything is read from AWS.
        let composite = request.observed_composite()?;
        let input: Input = request.input()?;
        let spec = XrSpec::from_spec_value(request.composite_value(&["spec"]))?;
        let xr = XrRef::of(&composite);
        let settings = Settings::new(xr, &spec, &input)?;
        let observed = observed::read(request.observed_resources());
        let now = Timestamp::of(self.clock.now());
        // What earlier reconciles left in the status: a hint, re-validated on use.
        let packages = request.composite_value(&["status", "packages"]);
        let previous = Previous::read(&composite, packages, &settings);
        let remembered = Recollection::of(&previous, &settings, &spec);

        // The truth from the registry; if it cannot be had right now, the
        // last resolved set from the XR's status, so nothing is dropped.
        let installed = remembered.installed(&observed);
        let quarantine = quarantine(&previous, now);
        let hints = Hints {
            installed: Some(&installed),
            quarantine: Some(&quarantine),
        };
        let Resolved {
            resolution,
            failure,
        } = self
            .resolved(request, &input, &settings, &spec, hints, &remembered)
            .await?;
        let graph = &resolution.graph;

        // Compose everything, pace what moves, and admit only what may
        // exist yet.
        let scope = match failure {
            None => PlanScope::Complete,
            Some(_) => PlanScope::Partial,
        };
        let Composition {
            admission:
                Admission {
                    desired,
                    waiting,
                    held,
                    locked,
                    removing,
                },
            ownership,
            lingering,
            lock,
            rollouts,
            inactive,
        } = Composition::of(
            request, &settings, xr, graph, &observed, &previous, scope, now,
        )?;
        ask(response, removing, &lingering, &lock, &ownership);
        inactive.ask(response);
        for (name, dependents) in &locked {
            tracing::info!(resource = %name, ?dependents, "kept: Crossplane's Lock lists packages that depend on it");
        }
        // A shared object that does not serve this XR yet (a conflict, not
        // ready, or not known yet) holds the XR back like a waiting one.
        let all_ready =
            set_desired(response, desired) && waiting.is_empty() && ownership.is_settled();
        let converging = !all_ready || failure.is_some() || !resolution.blocked.is_empty();
        if converging {
            // Crossplane would otherwise call the XR ready as soon as what is
            // composed so far is ready, while packages still wait their turn.
            response.set_composite_ready(false);
        }
        tell(response, &rollouts);

        Report {
            settings: &settings,
            graph,
            observed: &observed,
            waiting: &waiting,
            held: &held,
            lingering: lingering.resources(),
            previous: &previous,
            failure: failure.as_ref(),
            kept: &resolution.kept,
            remembered: &remembered,
            ownership: &ownership,
            rollouts: &rollouts,
            available: &resolution.available,
            dialects: &resolution.warnings,
            inactive: &inactive,
            skipped: &resolution.skipped,
            blocked: &resolution.blocked,
        }
        .write(response);
        // The next wave or the retry should not wait a full TTL; nor should
        // a removal held by the Lock or by deleted objects, which are not
        // watched.
        let hurried = converging || !locked.is_empty() || !lingering.resources().is_empty();
        // A deadline, a grace, a window or a quarantine ends then, with
        // nothing observed changing: be called back in time for it.
        let wake = rollouts.wake.map(|at| now.until(at).max(MIN_WAKE));
        Ok(Outcome::of(settings.ttl, hurried, wake, failure.is_none()))
    }

    /// What stands in for a registry that cannot be read right now: the last
    /// resolved set from the XR's status, and the error to report with it.
    /// Only a registry the platform admitted, by listing it or by this
    /// process having read it, may be stood in for; else nothing new is
    /// composed and what is observed stays.
    fn recall(
        &self,
        settings: &Settings,
        input: &Input,
        remembered: &Recollection,
        error: Error,
    ) -> Resolved {
        let remembered = remembered.remembered();
        let refused = self
            .unadmitted(settings, input)
            .filter(|_| !remembered.nodes.is_empty());
        let (graph, failure) = match refused {
            None => {
                tracing::warn!(%error, "registry unreadable; composing the last resolved set");
                let graph = remembered.graph().unwrap_or_else(|unusable| {
                    tracing::warn!(%unusable, "status.packages cannot be recomposed; keeping what is observed");
                    Graph::default()
                });
                (graph, error)
            }
            Some(registry) => {
                tracing::warn!(%error, %registry, "registry unreadable and never read; keeping what is observed");
                let cause = Box::new(error);
                (Graph::default(), Error::NotRecomposed { registry, cause })
            }
        };
        Resolved {
            resolution: Resolution {
                graph,
                ..Resolution::default()
            },
            failure: Some(failure),
        }
    }

    /// The registry's answer or, when it cannot be had right now and may
    /// be waited out, the last resolved set.
    async fn resolved(
        &self,
        request: &Request,
        input: &Input,
        settings: &Settings,
        spec: &XrSpec,
        hints: Hints<'_>,
        remembered: &Recollection<'_>,
    ) -> Result<Resolved> {
        match self.resolve(request, settings, spec, hints).await {
            Ok(resolution) => Ok(Resolved {
                resolution,
                failure: None,
            }),
            Err(error) if can_wait_out(&error) => {
                Ok(self.recall(settings, input, remembered, error))
            }
            Err(error) => Err(error),
        }
    }

    async fn resolve(
        &self,
        request: &Request,
        settings: &Settings,
        spec: &XrSpec,
        hints: Hints<'_>,
    ) -> Result<Resolution> {
        let credentials = request
            .credentials(&settings.credentials_name)
            .map(AwsCredentials::from_credential_data)
            .transpose()?;
        let resolution = resolve_within(
            self.connector.as_ref(),
            settings,
            spec,
            hints,
            credentials.as_ref(),
            self.deadline,
        )
        .await?;
        self.seen
            .record(&settings.registry, &settings.registry_host);
        Ok(resolution)
    }

    /// The registry, named for a message, when the XR's status may not
    /// stand in for it: the input does not list `allowedRegistries` (so the
    /// XR's registry is bounded only by what this function can read) and
    /// this process has never read it. An XR could otherwise name a
    /// registry the function cannot read, hand-write `status.packages`, and
    /// get package objects and a cluster-wide rewrite pointing at it.
    fn unadmitted(&self, settings: &Settings, input: &Input) -> Option<String> {
        let admitted = input.allowed_registries.is_some()
            || self
                .seen
                .has_read(&settings.registry, &settings.registry_host);
        (!admitted).then(|| settings.registry.to_string())
    }
}

/// What a call composes, and what it learnt on the way that the response
/// and the report need.
struct Composition {
    admission: Admission,
    ownership: Ownership,
    lingering: Leaving,
    lock: Lock,
    rollouts: Decisions,
    /// What waits for definitions to be activated.
    inactive: Inactive,
}

impl Composition {
    /// Composes `graph`; leaves to others what another XR (or nobody)
    /// holds, protecting with a Usage what this XR uses of it; paces the
    /// packages of its own that move to a new release; reads which
    /// definitions are active; then admits only what may exist yet.
    #[allow(clippy::too_many_arguments)]
    fn of(
        request: &Request,
        settings: &Settings,
        xr: XrRef<'_>,
        graph: &Graph,
        observed: &ObservedResources,
        previous: &Previous,
        scope: PlanScope,
        now: Timestamp,
    ) -> Result<Self> {
        let mut plan = if graph.is_empty() {
            Vec::new()
        } else {
            compose::plan(settings, graph)?
        };
        let adoption = Adoption::allowed(settings.adopt_existing);
        // Objects waiting for definitions are not asked about yet: their
        // kinds may not exist, and Crossplane fails a call that asks for an
        // object of an unknown kind.
        let inactive = Inactive::read(settings, graph, observed, request.proto());
        let unknown_kinds: BTreeSet<String> = plan
            .iter()
            .filter(|p| p.needs.iter().any(|n| inactive.is_pending(n)))
            .map(|p| p.name.clone())
            .collect();
        let ownership = Ownership::sort(
            request.proto(),
            &mut plan,
            observed,
            xr,
            adoption,
            &unknown_kinds,
        );
        let rollouts = Rollouts {
            policy: &settings.upgrades,
            paused: settings.paused,
            now,
            observed,
            graph,
            remembered: &previous.rollouts(),
            quarantined: &previous.quarantined,
        }
        .decide(&mut plan);
        plan.extend(ownership.usages(xr));
        // Removal asks Crossplane what the XR cannot show: whether leaving
        // package objects are really gone, and what its Lock still needs.
        let planned: BTreeSet<&str> = graph.nodes().map(|n| n.name.as_str()).collect();
        let leaving = previous
            .packages
            .iter()
            .filter(|p| !planned.contains(p.name.as_str()));
        let lingering = Leaving::read(request.proto(), leaving);
        let lock = Lock::read(request.proto());
        let admission = Gate {
            observed,
            shared: &ownership.ready(),
            dependencies: &previous.dependencies(),
            lingering: lingering.resources(),
            lock: &lock,
            scope,
            moving: &rollouts.moving,
            inactive: &inactive.resources(),
        }
        .admit(plan);
        Ok(Self {
            admission,
            ownership,
            lingering,
            lock,
            rollouts,
            inactive,
        })
    }
}

/// What a reconcile composes from: the registry's answer or, when the
/// registry cannot be read right now, the last resolved set and why.
struct Resolved {
    resolution: Resolution,
    /// Why the registry's answer is not the one composed.
    failure: Option<Error>,
}

/// How a reconcile ended, for the response and the memo.
struct Outcome {
    /// How long Crossplane may keep the answer before calling again.
    ttl: Duration,
    /// Built without a registry failure, so it may be given again while
    /// nothing changes.
    reusable: bool,
    /// When the time alone changes the answer (see `rollout`): it may be
    /// given again only until then.
    wake: Option<Duration>,
}

impl Outcome {
    /// A composed answer: called back within `ttl`, sooner when `hurried`
    /// (`CONVERGING_TTL`) or when the time alone changes it (`wake`).
    fn of(ttl: Duration, hurried: bool, wake: Option<Duration>, reusable: bool) -> Outcome {
        let ttl = if hurried {
            ttl.min(CONVERGING_TTL)
        } else {
            ttl
        };
        Outcome {
            ttl: wake.map_or(ttl, |wake| ttl.min(wake)),
            reusable,
            wake,
        }
    }

    /// A Fatal answer: Crossplane requeues with its own backoff, and the
    /// answer is never given again.
    const FAILED: Outcome = Outcome {
        ttl: DEFAULT_TTL,
        reusable: false,
        wake: None,
    };
}

/// Asks Crossplane for what the next call needs to see. Whether to ask
/// depends only on what every call of this reconcile sees alike (the plan,
/// the observed state, the XR's status), never on the answers, so
/// Crossplane's requirements settle.
fn ask(
    response: &mut Response,
    removing: bool,
    lingering: &Leaving,
    lock: &Lock,
    ownership: &Ownership,
) {
    if (removing || lingering.is_asking()) && lock.can_be_asked() {
        // Asked again on the call that reads them.
        lingering.ask(response);
        response.require_resource(
            package_lock::REQUIREMENT,
            package_lock::API_VERSION,
            package_lock::KIND,
            package_lock::NAME,
        );
    }
    ownership.ask(response);
}

/// The events of rollouts that started, finished or were rolled back in
/// this call: each happens once, so steady reconciles stay quiet.
/// The operator reading the function's log sees them too.
fn tell(response: &mut Response, rollouts: &Decisions) {
    for event in &rollouts.events {
        match event.severity {
            Severity::Normal => {
                tracing::info!(reason = event.reason, "{}", event.message);
                response.normal(event.reason, event.message.clone());
            }
            Severity::Warning => {
                tracing::warn!(reason = event.reason, "{}", event.message);
                response.warning(event.reason, event.message.clone());
            }
        }
    }
}

/// The releases resolution skips: the quarantine entries of the status in
/// force at `now`, by the repository of the package they name.
fn quarantine(previous: &Previous, now: Timestamp) -> Quarantine {
    let mut quarantine = Quarantine::default();
    for q in previous.quarantined.iter().filter(|q| now < q.until) {
        let repository = previous
            .packages
            .iter()
            .find(|p| p.name == q.name)
            .map(|p| p.repository.as_str());
        if let Some(repository) = repository {
            quarantine.insert(
                repository,
                Release {
                    version: q.version.clone(),
                    digest: q.digest.clone(),
                },
            );
        }
    }
    quarantine
}

/// Puts the admitted resources in the response; says whether all are ready.
fn set_desired(response: &mut Response, desired: Vec<Desired>) -> bool {
    let mut all_ready = true;
    for Desired {
        name,
        object,
        ready,
    } in desired
    {
        all_ready &= ready;
        response.set_desired_resource(&name, object, ready);
    }
    all_ready
}

/// Failures that a later call may not see: composing the last resolved set
/// and retrying beats a Fatal that would stall every package. A package
/// failing the supply-chain gate is one (its scan may finish, its findings
/// be fixed or ignored) when it reaches the caller: only when an installed
/// package would otherwise wait for it (see `resolve`).
fn can_wait_out(error: &Error) -> bool {
    error.is_transient()
        || matches!(
            error,
            Error::InvalidPackage { .. } | Error::SupplyChain { .. }
        )
}
