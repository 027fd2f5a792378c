//! Fuzz, property and differential suites, on stable Rust.
//!
//! Each suite is one `#[test]` that runs proptest cases in batches until its
//! time budget is spent, half with a fixed seed and half with a random one:
//!
//! - `FUZZ_SECONDS` (default 2): the budget of each suite, in seconds.
//! - `FUZZ_SEED`: the "random" seed, to replay a failure (decimal or 0x hex).
//! - `FUZZ_BATCH`: with `FUZZ_SEED`, runs only that batch of that seed.
//! - `FUZZ_REQUIRE_ORACLE=1`: a differential suite fails, instead of
//!   skipping, when the Go oracle (`tests/oracle`) cannot be built.
//!
//! Each suite prints its seeds and case counts; a failure prints the seed,
//! the batch and proptest's minimal failing input. Batch `i` of seed `s` is
//! always the same cases, so `FUZZ_SEED=s FUZZ_BATCH=i` replays a failure
//! at once, whatever budget found it. `scripts/fuzz` runs them longer.
//!
//! The differential suites build `tests/oracle` (Masterminds/semver v3.5.0
//! and v1.5.0, and Go's `path.Match`; built a second time with
//! `-modfile=v3.4.mod` for v3.4.0) with `go build` into
//! `$HOME/.cache/function-ecr-packages/oracle-<hash of its sources>` and talk
//! to one long-lived oracle process per suite, a JSON line each way. Without
//! Go they print SKIPPED and pass, unless `FUZZ_REQUIRE_ORACLE` is set.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::collections::hash_map::RandomState;
use std::fmt::Debug;
use std::hash::BuildHasher;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use function_ecr_packages::error::Error;
use function_ecr_packages::function::package_lock::{self as lock, Lock};
use function_ecr_packages::names::dns_label;
use function_ecr_packages::oci::blob::{self, Compression, LayerLimits, LayerReader};
use function_ecr_packages::oci::xpkg::{Manifest, package_manifest};
use function_ecr_packages::proto::v1::{
    Capability, RequestMeta, Resource, Resources, RunFunctionRequest,
};
use function_ecr_packages::sdk::Request;
use function_ecr_packages::sdk::structs::{json_to_struct, struct_to_json};
use function_ecr_packages::signature::{
    Bundle, Finding, LegacySignature, PublicKey, SimpleSigning, verify_bundle, verify_legacy,
};
use function_ecr_packages::spec::policy::{glob_match, path_match};
use function_ecr_packages::spec::{Input, XrSpec};
use function_ecr_packages::version::{
    Constraint, Dialect, MAX_VERSION_LEN, VersionSpec, parse_tag, select_highest, select_highest_in,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{Map, Value as Json, json};

// ---------------------------------------------------------------------------
// The driver.

const FIXED_SEED: u64 = 0x5eed_f00d_0ec5_0001;
const BATCH: u32 = 64;

fn budget() -> Duration {
    let seconds = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(2.0);
    Duration::from_secs_f64(seconds)
}

fn random_seed() -> u64 {
    if let Ok(text) = std::env::var("FUZZ_SEED") {
        let text = text.trim();
        let parsed = match text.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => text.parse(),
        };
        return parsed.unwrap_or_else(|e| panic!("FUZZ_SEED={text:?}: {e}"));
    }
    RandomState::new().hash_one(Instant::now())
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The rng of batch `batch` of `seed`.
fn batch_rng(seed: u64, batch: u64) -> TestRng {
    let mut state = seed ^ batch.wrapping_mul(0xd1b5_4a32_d192_ed03);
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(8) {
        chunk.copy_from_slice(&splitmix(&mut state).to_le_bytes());
    }
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// Runs `test` on values of `strategy` until the budget is spent, half with
/// the fixed seed and half with the random one. Returns the case count.
fn fuzz<S>(suite: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) -> u64
where
    S: Strategy,
    S::Value: Debug,
{
    let half = budget() / 2;
    let mut total = 0;
    // FUZZ_BATCH replays one batch of FUZZ_SEED (what a failure names).
    let replay = std::env::var("FUZZ_BATCH").ok().map(|b| {
        b.trim()
            .parse::<u64>()
            .unwrap_or_else(|e| panic!("FUZZ_BATCH={b:?}: {e}"))
    });
    let seeds = match replay {
        Some(_) => vec![("random", random_seed())],
        None => vec![("fixed", FIXED_SEED), ("random", random_seed())],
    };
    for (which, seed) in seeds {
        let started = Instant::now();
        let (mut batch, mut cases) = (replay.unwrap_or(0), 0u64);
        while cases == 0 || (replay.is_none() && started.elapsed() < half) {
            let config = Config {
                cases: BATCH,
                failure_persistence: None,
                max_shrink_iters: 4096,
                max_shrink_time: 30_000,
                ..Config::default()
            };
            let mut runner = TestRunner::new_with_rng(config, batch_rng(seed, batch));
            if let Err(failure) = runner.run(&strategy, &test) {
                panic!(
                    "{suite}: {which} seed {seed:#x}, batch {batch}: {failure}\n\
                     replay: FUZZ_SEED={seed:#x} FUZZ_BATCH={batch} cargo test --test fuzz {suite}"
                );
            }
            batch += 1;
            cases += u64::from(BATCH);
        }
        eprintln!(
            "{suite}: {which} seed {seed:#x}: {cases} cases in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        total += cases;
    }
    total
}

// ---------------------------------------------------------------------------
// The Go oracle.

/// One oracle process, asked one JSON line at a time.
struct Oracle {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Oracle {
    /// `None` (after saying why) when Go is missing, unless
    /// `FUZZ_REQUIRE_ORACLE` is set, when that is a failure.
    fn start(suite: &str) -> Option<Oracle> {
        Oracle::start_with(suite, "go.mod")
    }

    /// The oracle built with `modfile` (`go.mod`: v3.5.0, `v3.4.mod`: v3.4.0).
    fn start_with(suite: &str, modfile: &str) -> Option<Oracle> {
        match build_oracle(modfile).and_then(|binary| {
            let mut child = Command::new(&binary)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
            let stdin = child.stdin.take().ok_or("no stdin")?;
            let stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
            Ok(Oracle {
                child,
                stdin,
                stdout,
            })
        }) {
            Ok(oracle) => Some(oracle),
            Err(why) if std::env::var_os("FUZZ_REQUIRE_ORACLE").is_some_and(|v| v != "0") => {
                panic!("{suite}: the Go oracle is required (FUZZ_REQUIRE_ORACLE) but {why}")
            }
            Err(why) => {
                eprintln!("{suite}: SKIPPED, no Go oracle: {why}");
                None
            }
        }
    }

    fn ask(&mut self, request: &Json) -> Json {
        let mut line = request.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .and_then(|()| self.stdin.flush())
            .unwrap_or_else(|e| panic!("oracle stdin: {e}"));
        let mut answer = String::new();
        match self.stdout.read_line(&mut answer) {
            Ok(n) if n > 0 => serde_json::from_str(&answer)
                .unwrap_or_else(|e| panic!("oracle answered {answer:?}: {e}")),
            other => panic!("oracle died on {request}: {other:?}"),
        }
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds `tests/oracle` with `modfile` (and the `.sum` beside it) once per
/// content (a hash of those sources names the binary), into the cache
/// directory, and returns the binary.
fn build_oracle(modfile: &str) -> Result<PathBuf, String> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle");
    let sum = format!("{}.sum", modfile.trim_end_matches(".mod"));
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for file in [modfile, sum.as_str(), "main.go"] {
        let bytes = std::fs::read(source.join(file)).map_err(|e| format!("{file}: {e}"))?;
        for b in bytes {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    let cache = std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".cache/function-ecr-packages"))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    let binary = cache.join(format!("oracle-{hash:016x}"));
    if binary.exists() {
        return Ok(binary);
    }
    std::fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    // Several suites, in several threads of several processes, may build at
    // once: each into its own file, then rename.
    static BUILDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let build = BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let partial = cache.join(format!("oracle-{hash:016x}.{}.{build}", std::process::id()));
    let output = Command::new("go")
        .arg("build")
        .arg(format!("-modfile={modfile}"))
        .arg("-o")
        .arg(&partial)
        .arg(".")
        .current_dir(&source)
        .env("GOFLAGS", "-mod=mod -buildvcs=false")
        .output()
        .map_err(|e| format!("`go` is not runnable ({e})"))?;
    if !output.status.success() {
        return Err(format!(
            "`go build` in tests/oracle failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    std::fs::rename(&partial, &binary).map_err(|e| format!("{}: {e}", binary.display()))?;
    Ok(binary)
}

// ---------------------------------------------------------------------------
// Generators.

fn pick(items: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
    prop::sample::select(items).prop_map(str::to_owned)
}

/// Strings over `alphabet` (pieces, not just characters), `len` pieces.
fn over(
    alphabet: &'static [&'static str],
    len: std::ops::Range<usize>,
) -> impl Strategy<Value = String> + Clone {
    prop::collection::vec(prop::sample::select(alphabet), len).prop_map(|v| v.concat())
}

fn number() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        6 => (0u64..4).prop_map(|n| n.to_string()),
        2 => (0u64..40).prop_map(|n| n.to_string()),
        1 => pick(&["00", "01", "007", "18446744073709551615", "18446744073709551616", "99999999999999999999"]),
    ]
}

/// Grammar pieces come clean (what people write) or dirty (near misses).
fn part(dirty: bool) -> impl Strategy<Value = String> + Clone {
    let odd: &'static [&'static str] = if dirty {
        &["|", "1|", "x1", ""]
    } else {
        &["x", "*"]
    };
    prop_oneof![8 => number(), 2 => pick(&["x", "X", "*"]), 1 => pick(odd)]
}

fn identifiers() -> impl Strategy<Value = String> + Clone {
    prop::collection::vec(
        prop_oneof![
            12 => pick(&["alpha", "beta", "rc", "0", "1", "2", "11", "x", "a-b", "-", "0a"]),
            1 => pick(&["01", ""]),
        ],
        1..4,
    )
    .prop_map(|ids| ids.join("."))
}

/// Versions as constraints write them: `v`, one to three parts (wildcards
/// included), prerelease, build metadata.
fn constraint_version(dirty: bool) -> impl Strategy<Value = String> + Clone {
    let v: &'static [&'static str] = if dirty {
        &["", "", "", "v", "V"]
    } else {
        &["", "", "", "v"]
    };
    (
        pick(v),
        part(dirty),
        prop::option::weighted(0.7, part(dirty)),
        prop::option::weighted(0.6, part(dirty)),
        prop::option::weighted(0.25, identifiers()),
        prop::option::weighted(0.1, identifiers()),
        prop::option::weighted(if dirty { 0.1 } else { 0.001 }, part(dirty)),
    )
        .prop_map(|(v, major, minor, patch, pre, build, fourth)| {
            let mut s = v + &major;
            if let Some(minor) = minor {
                s = s + "." + &minor;
                if let Some(patch) = patch {
                    s = s + "." + &patch;
                    if let Some(fourth) = fourth {
                        s = s + "." + &fourth;
                    }
                }
            }
            if let Some(pre) = pre {
                s = s + "-" + &pre;
            }
            if let Some(build) = build {
                s = s + "+" + &build;
            }
            s
        })
}

fn space(dirty: bool) -> impl Strategy<Value = String> + Clone {
    let spaces: &'static [&'static str] = if dirty {
        &["", "", "", " ", " ", "  ", "\t", "\n", "\u{b}"]
    } else {
        &["", "", "", " ", " ", "  ", "\t", "\n"]
    };
    pick(spaces)
}

fn comparator(dirty: bool) -> impl Strategy<Value = String> + Clone {
    const OPS: &[&str] = &[
        "", "", "=", "!=", ">", "<", ">=", "<=", "=>", "=<", "~", "~>", "^",
    ];
    let odd: &'static [&'static str] = if dirty { &["==", "!", "> ="] } else { OPS };
    let op = prop_oneof![10 => pick(OPS), 1 => pick(odd)];
    let dash: &'static [&'static str] = if dirty {
        &[" - ", "  -  ", " -", "- ", "\t-\t", "-"]
    } else {
        &[" - ", "  -  ", "\t-\t"]
    };
    prop_oneof![
        5 => (op, space(dirty), constraint_version(dirty)).prop_map(|(o, s, v)| o + &s + &v),
        1 => (constraint_version(dirty), pick(dash), constraint_version(dirty))
            .prop_map(|(a, dash, b)| a + &dash + &b),
    ]
}

fn joined(items: Vec<(String, String)>) -> String {
    let n = items.len();
    let mut s = String::new();
    for (i, (item, sep)) in items.into_iter().enumerate() {
        s += &item;
        if i + 1 < n {
            s += &sep;
        }
    }
    s
}

fn and_group(dirty: bool) -> impl Strategy<Value = String> + Clone {
    let seps: &'static [&'static str] = if dirty {
        &[" ", ",", ", ", " , ", ",,", "  ", ""]
    } else {
        &[" ", ",", ", ", " , ", "  "]
    };
    (
        space(dirty),
        prop::collection::vec((comparator(dirty), pick(seps)), 1..4),
        space(dirty),
    )
        .prop_map(|(lead, items, trail)| lead + &joined(items) + &trail)
}

fn grammar(dirty: bool) -> impl Strategy<Value = String> + Clone {
    let ors: &'static [&'static str] = if dirty {
        &["||", " || ", "|| ", "|", "|||"]
    } else {
        &["||", " || ", "|| "]
    };
    prop::collection::vec((and_group(dirty), pick(ors)), 1..4).prop_map(joined)
}

/// Constraints from the grammar (mostly clean, so that most parse), random
/// text over the grammar's alphabet, and grammar output with a random piece
/// spliced in.
fn constraint_text() -> impl Strategy<Value = String> + Clone {
    let noise = over(
        &[
            "1", "0", "2", ".", "x", "*", "v", "-", "+", "|", "||", " ", ",", ">", "<", "=", "!",
            "~", "^", "a", "rc", "é", "\t",
        ],
        0..20,
    );
    prop_oneof![
        6 => grammar(false),
        2 => grammar(true),
        1 => noise.clone(),
        1 => (grammar(true), any::<prop::sample::Index>(), noise).prop_map(|(g, at, piece)| {
            let cut = at.index(g.len() + 1);
            let cut = (0..=cut).rev().find(|&i| g.is_char_boundary(i)).unwrap_or(0);
            format!("{}{piece}{}", &g[..cut], &g[cut..])
        }),
    ]
}

/// Tags as registries list them.
fn tag() -> impl Strategy<Value = String> {
    let semverish = (
        pick(&["", "", "v", "vv", "V"]),
        number(),
        prop::option::weighted(0.9, number()),
        prop::option::weighted(0.85, number()),
        prop::option::weighted(0.3, identifiers()),
        prop::option::weighted(0.1, identifiers()),
    )
        .prop_map(|(v, a, b, c, pre, build)| {
            let mut s = v + &a;
            for p in [b, c].into_iter().flatten() {
                s = s + "." + &p;
            }
            if let Some(pre) = pre {
                s = s + "-" + &pre;
            }
            if let Some(build) = build {
                s = s + "+" + &build;
            }
            s
        });
    prop_oneof![
        8 => semverish,
        1 => over(&["1", "0", ".", "v", "-", "+", "a", "latest", " "], 0..8),
    ]
}

fn glob_alphabet() -> &'static [&'static str] {
    &["a", "b", "/", "-", "é", "*", "?", "[", "]", "^", "\\"]
}

// ---------------------------------------------------------------------------
// Constraints.

/// Constraints written around the known disagreements between the
/// dialects: small numbers, partial and wildcarded versions under every
/// operator, `^0.x`, whitespace against comma lists, and prereleases on
/// some comparators of some `||` alternatives.
fn disagreement_text() -> impl Strategy<Value = String> + Clone {
    const OPS: &[&str] = &[
        "", "=", "!=", ">", "<", ">=", "<=", "~", "^", "^", ">", "<=",
    ];
    let small = || (0u64..3).prop_map(|n| n.to_string());
    let wild = || prop_oneof![6 => small(), 1 => pick(&["x", "*"])];
    let version = (
        wild(),
        prop::option::weighted(0.8, wild()),
        prop::option::weighted(0.6, small()),
        prop::option::weighted(0.3, pick(&["0", "rc.1", "alpha", "01"])),
    )
        .prop_map(|(major, minor, patch, pre)| {
            let mut s = major;
            if let Some(minor) = minor {
                s = s + "." + &minor;
                if let Some(patch) = patch {
                    s = s + "." + &patch;
                }
            }
            if let Some(pre) = pre {
                s = s + "-" + &pre;
            }
            s
        });
    let comparator = (pick(OPS), version).prop_map(|(op, v)| op + &v);
    let group = (
        prop::collection::vec(comparator, 1..3),
        pick(&[", ", ",", " "]),
    )
        .prop_map(|(items, sep)| items.join(&sep));
    prop::collection::vec(group, 1..3).prop_map(|groups| groups.join(" || "))
}

/// Tags next to the versions `disagreement_text` names, prereleases and
/// leading-zero prereleases included.
fn near_tag() -> impl Strategy<Value = String> {
    (
        pick(&["", "", "v"]),
        0u64..4,
        0u64..4,
        0u64..4,
        prop::option::weighted(0.3, pick(&["0", "rc.1", "alpha", "01"])),
    )
        .prop_map(|(v, a, b, c, pre)| match pre {
            Some(pre) => format!("{v}{a}.{b}.{c}-{pre}"),
            None => format!("{v}{a}.{b}.{c}"),
        })
}

/// What every dialect suite generates: the general grammar and noise half
/// the time, the known disagreements the other half; registry-like tags and
/// tags next to the constraints' versions.
fn dialect_cases() -> impl Strategy<Value = (String, Vec<String>)> {
    (
        prop_oneof![1 => constraint_text(), 1 => disagreement_text()],
        prop::collection::vec(prop_oneof![1 => tag(), 1 => near_tag()], 0..6),
    )
}

/// Disagreements between the dialects themselves, counted for the report
/// (never failed on: they are the libraries' own).
#[derive(Default)]
struct Tally {
    /// Constraint/tag pairs compared with the library, and those that held.
    pairs: u64,
    held: u64,
    /// Constraints the library accepted.
    parsed: u64,
    /// Per other dialect: cases parsed differently, checks answered
    /// differently, and the shortest example of each kind of difference.
    differs: BTreeMap<Dialect, (u64, u64)>,
    examples: BTreeMap<(Dialect, String), String>,
}

impl Tally {
    fn note(&mut self, other: Dialect, kind: String, example: String) {
        let shortest = self
            .examples
            .entry((other, kind))
            .or_insert_with(|| example.clone());
        if example.len() < shortest.len() {
            *shortest = example;
        }
    }
}

/// The library linked by each dialect's oracle, and where its answers are.
fn oracle_for(dialect: Dialect) -> (&'static str, &'static str, &'static str, &'static str) {
    // (modfile, info key and version, answer keys)
    match dialect {
        Dialect::V1_5 => ("go.mod", "v1", "v1.5.0", "v1"),
        Dialect::V3_4 => ("v3.4.mod", "v3", "v3.4.0", "v3"),
        Dialect::V3_5 => ("go.mod", "v3", "v3.5.0", "v3"),
    }
}

/// One dialect against its Go library: parse errors, which tags count, and
/// every `Check`, over `dialect_cases`. Also checks that `Constraint` and
/// `VersionSpec` answer as `Dialect::V3_5`, and counts how often the other
/// dialects read the same case differently.
fn against_masterminds(suite: &str, dialect: Dialect) {
    let (modfile, key, version, answers) = oracle_for(dialect);
    let Some(mut oracle) = Oracle::start_with(suite, modfile) else {
        return;
    };
    let linked = oracle.ask(&json!({"info": true}));
    assert_eq!(linked[key], version, "{suite}: the oracle linked {linked}");
    let (ok_key, tags_key) = if answers == "v1" {
        ("v1ok", "v1")
    } else {
        ("ok", "tags")
    };
    let oracle = RefCell::new(oracle);
    let tally = RefCell::new(Tally::default());
    let started = Instant::now();
    let cases = fuzz(suite, dialect_cases(), |(text, tags)| {
        let rust = dialect.parse(&text);
        let go = oracle.borrow_mut().ask(&json!({"c": text, "v": tags}));
        let go_ok = go[ok_key] == true;
        if text.len() > MAX_VERSION_LEN {
            // Refused on purpose, where Masterminds takes up to 512 bytes.
            prop_assert!(rust.is_err(), "{} bytes accepted", text.len());
            return Ok(());
        }
        if let Err(Error::InvalidConstraint { message, .. }) = &rust
            && message.contains("MaxConstraintGroups")
        {
            // v3.5.0's limit on alternatives, which every dialect applies.
            return Ok(());
        }
        prop_assert_eq!(
            rust.is_ok(),
            go_ok,
            "parse of {:?} in {}: rust {:?}, go {}",
            text,
            dialect,
            rust,
            go
        );
        if dialect == Dialect::V3_5 {
            // The v3 reading is `Constraint`, and Crossplane reaches it
            // through VersionSpec after trying a digest.
            prop_assert_eq!(Constraint::parse(&text).is_ok(), go_ok);
            prop_assert_eq!(
                matches!(VersionSpec::parse(&text), Ok(VersionSpec::Constraint(_))),
                go_ok && !text.contains(':')
            );
        }
        let mut tally = tally.borrow_mut();
        tally.parsed += u64::from(go_ok);
        for (i, tag) in tags.iter().enumerate() {
            let counted = dialect.tag_version(tag);
            let go_tag = &go[tags_key][i];
            prop_assert_eq!(
                counted.is_some(),
                go_tag["counts"] == true,
                "tag {:?} counts in {}: rust {:?}, go {}",
                tag,
                dialect,
                counted,
                go_tag
            );
            if let (Ok(c), Some(_)) = (&rust, &counted) {
                let held = c.matches_tag(tag);
                prop_assert_eq!(
                    held,
                    go_tag["check"] == true,
                    "{:?} matches {:?} in {}: go {}",
                    text,
                    tag,
                    dialect,
                    go_tag
                );
                if let Some(v) = parse_tag(tag) {
                    prop_assert_eq!(c.matches(&v), held, "{:?} vs {:?} as a Version", text, tag);
                    if dialect == Dialect::V3_5 {
                        let c3 = Constraint::parse(&text).expect("parsed above");
                        prop_assert_eq!(c3.matches(&v), held);
                    }
                }
                tally.pairs += 1;
                tally.held += u64::from(held);
            }
        }
        // The other dialects on the same case, for the report.
        for other in Dialect::ALL.into_iter().filter(|&d| d != dialect) {
            let theirs = other.parse(&text);
            if theirs.is_ok() != rust.is_ok() {
                tally.differs.entry(other).or_default().0 += 1;
                let kind = format!("parses {}", rust.is_ok());
                let example = format!(
                    "{text:?} parses here: {}, there: {}",
                    rust.is_ok(),
                    theirs.is_ok()
                );
                tally.note(other, kind, example);
                continue;
            }
            let (Ok(ours), Ok(theirs)) = (&rust, &theirs) else {
                continue;
            };
            for tag in &tags {
                let (a, b) = (ours.matches_tag(tag), theirs.matches_tag(tag));
                if a != b {
                    tally.differs.entry(other).or_default().1 += 1;
                    let counts = other.tag_version(tag).is_some();
                    let kind = format!("check {a}, counts there {counts}");
                    let example = format!("{text:?} vs {tag:?}: here {a}, there {b}");
                    tally.note(other, kind, example);
                }
            }
        }
        Ok(())
    });
    let tally = tally.borrow();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{suite}: {cases} cases, {} constraint/tag pairs checked against {} ({:.0} pairs/s), \
         {} constraints parsed, {} checks held",
        tally.pairs,
        dialect.library(),
        tally.pairs as f64 / seconds.max(1e-9),
        tally.parsed,
        tally.held,
    );
    for other in Dialect::ALL.into_iter().filter(|&d| d != dialect) {
        let (parses, checks) = tally.differs.get(&other).copied().unwrap_or_default();
        eprintln!(
            "{suite}: {} (there) reads {parses} cases' parses and {checks} checks differently",
            other.library()
        );
        for ((_, kind), example) in tally.examples.iter().filter(|((d, _), _)| *d == other) {
            eprintln!("{suite}:   {kind}: {example}");
        }
    }
}

/// Masterminds/semver v3.5.0 (Crossplane v2.4 on): `Dialect::V3_5`,
/// `Constraint` and `VersionSpec`.
#[test]
fn constraints_against_masterminds() {
    against_masterminds("constraints_against_masterminds", Dialect::V3_5);
}

/// Masterminds/semver/v3 v3.4.0 (Crossplane v2.3): `Dialect::V3_4`.
#[test]
fn constraints_against_masterminds_v3_4() {
    against_masterminds("constraints_against_masterminds_v3_4", Dialect::V3_4);
}

/// Masterminds/semver v1.5.0 (Crossplane v2.0 to v2.2): `Dialect::V1_5`.
#[test]
fn constraints_against_masterminds_v1_5() {
    against_masterminds("constraints_against_masterminds_v1_5", Dialect::V1_5);
}

/// Parsing never panics on anything, is cut off at the limit whatever the
/// content, and keeps its text; matching and selection never panic.
#[test]
fn constraints_never_panic() {
    let text = prop_oneof![
        4 => constraint_text(),
        1 => any::<String>(),
        1 => (constraint_text(), 1usize..400).prop_map(|(t, n)| t.repeat(n)),
    ];
    let strategy = (text, prop::collection::vec(tag(), 0..6));
    fuzz("constraints_never_panic", strategy, |(text, tags)| {
        let parsed = VersionSpec::parse(&text);
        if text.len() > MAX_VERSION_LEN {
            match &parsed {
                Err(Error::InvalidConstraint {
                    constraint,
                    message,
                }) => {
                    prop_assert!(constraint.len() <= 35 && message.contains("MAX_VERSION_LEN"));
                }
                other => prop_assert!(false, "{} bytes accepted: {:?}", text.len(), other),
            }
        }
        if let Ok(VersionSpec::Constraint(c)) = parsed {
            prop_assert_eq!(c.as_str(), text.as_str());
            let versions: Vec<_> = tags.iter().filter_map(|t| parse_tag(t)).collect();
            for v in &versions {
                let _ = c.matches(v);
            }
            let picked = select_highest(&[&c], tags.iter().map(String::as_str));
            if let Some(picked) = picked {
                let v = parse_tag(picked).expect("picked tags count");
                prop_assert!(c.matches(&v));
            }
        }
        // Every dialect, and the choice they must all agree on.
        let readings: Vec<_> = Dialect::ALL.iter().map(|d| d.parse(&text)).collect();
        let picked = select_highest_in(&[], &[&text], tags.iter().map(String::as_str));
        prop_assert_eq!(picked.is_ok(), readings.iter().all(Result::is_ok));
        if let Ok(Some(picked)) = picked {
            for reading in readings.iter().flatten() {
                prop_assert!(
                    reading.matches_tag(picked),
                    "{} rejects {:?}",
                    reading.dialect(),
                    picked
                );
            }
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// Globs.

#[test]
fn globs_against_go_path_match() {
    let suite = "globs_against_go_path_match";
    let Some(oracle) = Oracle::start(suite) else {
        return;
    };
    let oracle = RefCell::new(oracle);
    let strategy = (
        over(glob_alphabet(), 0..10),
        over(&["a", "b", "/", "-", "é", "*", "["], 0..8),
    );
    fuzz(suite, strategy, |(pattern, name)| {
        let go = oracle.borrow_mut().ask(&json!({"p": pattern, "n": name}));
        let ours = path_match(pattern.as_bytes(), name.as_bytes());
        let theirs = if go["bad"] == true {
            Err(())
        } else {
            Ok(go["matched"] == true)
        };
        prop_assert_eq!(
            ours.map_err(|_| ()),
            theirs,
            "path.Match({:?}, {:?}): go {}",
            pattern,
            name,
            go
        );
        prop_assert_eq!(glob_match(&pattern, &name), go["matched"] == true);
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// Struct <-> JSON.

fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        (-(1i64 << 53)..=(1i64 << 53)).prop_map(Json::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        any::<String>().prop_map(Json::String),
        pick(&["", "1", "true", "null", "é", "\u{0}"]).prop_map(Json::String),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

/// What a Struct can carry of `value`: a whole float within 2^53 comes back
/// as the integer it is.
fn normalized(value: &Json) -> Json {
    match value {
        Json::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 => json!(f as i64),
            Some(f) => json!(f),
            None => Json::Null,
        },
        Json::Array(items) => Json::Array(items.iter().map(normalized).collect()),
        Json::Object(map) => Json::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), normalized(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[test]
fn struct_json_round_trip() {
    let object = prop::collection::btree_map(any::<String>(), json_value(), 0..8)
        .prop_map(|m| Json::Object(m.into_iter().collect::<Map<_, _>>()));
    fuzz("struct_json_round_trip", object, |value| {
        let s = json_to_struct(&value).expect("an object is a Struct");
        let back = struct_to_json(&s);
        prop_assert_eq!(&back, &normalized(&value));
        // And the other way: what came back converts to the same Struct.
        prop_assert_eq!(json_to_struct(&back), Some(s));
        prop_assert!(json_to_struct(&Json::Array(vec![])).is_none());
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// XR and input decoding.

/// Any JSON, biased to the strings and shapes the decoders look at.
fn noise_json() -> impl Strategy<Value = Json> {
    prop_oneof![
        3 => json_value(),
        2 => pick(&[
            "", "Provider", "Function", "Configuration", "Rewrite", "Skip", "IRSA", "PodIdentity",
            "123456789012", "eu-west-2", "us-gov-west-1", "upbound/provider-aws-s3", ">=v1.0.0",
            "v1.2.3", "*", "a*", "crossplane-system", "1h", "30s", "-1s", "sha256:",
        ]).prop_map(Json::String),
        1 => (1usize..2000).prop_map(|n| Json::String("a".repeat(n))),
        1 => (0usize..300).prop_map(|n| Json::Array(vec![json!("x"); n])),
    ]
}

/// Replaces the value at a random path of `doc` (or adds a key) with `with`.
fn mutate(doc: &mut Json, path: &[prop::sample::Index], with: Json, key: Option<String>) {
    let next = match (path.first(), &mut *doc) {
        (Some(index), Json::Object(map)) if !map.is_empty() => {
            let k = map.keys().nth(index.index(map.len())).cloned();
            k.and_then(|k| map.get_mut(&k))
        }
        (Some(index), Json::Array(items)) if !items.is_empty() => {
            let i = index.index(items.len());
            items.get_mut(i)
        }
        _ => None,
    };
    if let Some(next) = next {
        return mutate(next, &path[1..], with, key);
    }
    match (doc, key) {
        (Json::Object(map), Some(key)) => {
            map.insert(key, with);
        }
        (doc, _) => *doc = with,
    }
}

fn valid_xr() -> Json {
    json!({
        "apiVersion": "ecr.platform.example.org/v1alpha1",
        "kind": "XEcrPackages",
        "metadata": {"name": "platform-packages"},
        "spec": {
            "registry": {"accountId": "123456789012", "region": "eu-west-2"},
            "strategy": "Rewrite",
            "packages": [
                {"kind": "Provider", "repository": "upbound/provider-aws-s3", "version": ">=v2.0.0"},
                {"kind": "Function", "repository": "crossplane-contrib/function-patch-and-transform",
                 "version": "v0.8.2", "runtimeConfigName": "small"}
            ],
            "iam": {
                "oidcProvider": "oidc.eks.eu-west-2.amazonaws.com/id/ABC",
                "nodeRoleNames": ["eks-nodes"],
                "serviceAccounts": [{"namespace": "crossplane-system", "name": "crossplane"}]
            }
        }
    })
}

fn valid_input() -> Json {
    json!({
        "apiVersion": "ecr.fn.crossplane.io/v1beta1",
        "kind": "Input",
        "strategy": "Rewrite",
        "mirrors": [{"upstream": "xpkg.upbound.io/", "repositoryPrefix": ""}],
        "resolveDependencies": true,
        "allowedRepositories": ["upbound/*"],
        "allowedRegistries": [{"accountId": "*", "region": "eu-west-2"}],
        "allowedRuntimeConfigs": ["small"],
        "iam": {"enabled": true, "roleName": "pull", "allowedRoleNames": ["pull-*"],
                "serviceAccounts": [{"namespace": "crossplane-system", "name": "crossplane"}]},
        "ttl": "60s",
        "tagCacheTTL": "5m",
        "verify": {"authorities": [{"name": "platform", "repositories": ["upbound/*"],
                                    "key": {"publicKey": COSIGN_PUB}}]}
    })
}

fn mutations() -> impl Strategy<Value = Vec<(Vec<prop::sample::Index>, Json, Option<String>)>> {
    prop::collection::vec(
        (
            prop::collection::vec(any::<prop::sample::Index>(), 0..5),
            noise_json(),
            prop::option::weighted(
                0.2,
                pick(&[
                    "extra",
                    "version",
                    "kind",
                    "spec",
                    "packages",
                    "iam",
                    "ttl",
                    "crossplane",
                ]),
            ),
        ),
        0..4,
    )
}

#[test]
fn xr_decoding_never_panics_and_names_a_field() {
    fuzz("xr_decoding", mutations(), |edits| {
        let mut xr = valid_xr();
        for (path, with, key) in edits {
            mutate(&mut xr, &path, with, key);
        }
        // A call reads the spec straight from the request's protobuf: it
        // must read as the JSON of that protobuf does, errors included.
        // (A mutation may make the whole XR something else: a request
        // cannot carry that.)
        if let Some(composite) = json_to_struct(&xr) {
            let typed = XrSpec::from_spec_value(composite.fields.get("spec"));
            let read = XrSpec::from_composite(&struct_to_json(&composite));
            prop_assert_eq!(format!("{typed:?}"), format!("{read:?}"));
        }
        match XrSpec::from_composite(&xr) {
            Ok(_) => {}
            Err(Error::InvalidSpec { field, message }) => {
                prop_assert!(field.starts_with("spec"), "field {:?}: {}", field, message);
                prop_assert!(!message.is_empty());
                prop_assert!(message.len() < 4096, "message of {} bytes", message.len());
            }
            Err(other) => prop_assert!(false, "not a field error: {:?}", other),
        }
        Ok(())
    });
}

#[test]
fn input_decoding_never_panics_and_names_a_field() {
    fuzz("input_decoding", mutations(), |edits| {
        let mut input = valid_input();
        for (path, with, key) in edits {
            mutate(&mut input, &path, with, key);
        }
        let request = Request::new(RunFunctionRequest {
            input: json_to_struct(&input),
            ..Default::default()
        });
        match request.input::<Input>() {
            Ok(_) => {}
            Err(Error::InvalidInput { field, message }) => {
                // The path names the field; only a key that is itself ""
                // (an unknown field, named in the message) leaves it empty.
                prop_assert!(
                    !field.is_empty() || message.contains("unknown field ``"),
                    "no field: {}",
                    message
                );
                prop_assert!(!message.is_empty());
                prop_assert!(message.len() < 4096, "message of {} bytes", message.len());
            }
            Err(other) => prop_assert!(false, "not a field error: {:?}", other),
        }
        Ok(())
    });
}

/// Crossplane's Lock as Crossplane v2.2 writes it: s3 declares the family.
fn valid_lock() -> Json {
    json!({
        "apiVersion": "pkg.crossplane.io/v1beta1", "kind": "Lock", "metadata": {"name": "lock"},
        "packages": [
            {"name": "upbound-provider-aws-s3-0a1b2c", "type": "Provider",
             "source": "xpkg.upbound.io/upbound/provider-aws-s3", "version": "v2.1.0",
             "dependencies": [{"package": "xpkg.upbound.io/upbound/provider-family-aws",
                               "constraints": ">=v2.0.0", "type": "Provider"}]},
            {"name": "upbound-provider-family-aws-3d4e5f", "type": "Provider",
             "source": "xpkg.upbound.io/upbound/provider-family-aws", "version": "v2.1.0",
             "dependencies": []}
        ]
    })
}

#[test]
fn lock_reading_never_panics_and_only_ever_holds_what_is_declared() {
    fuzz("lock_reading", mutations(), |edits| {
        let mut lock = valid_lock();
        for (path, with, key) in edits {
            mutate(&mut lock, &path, with, key);
        }
        let mut request = RunFunctionRequest {
            meta: Some(RequestMeta {
                tag: String::new(),
                capabilities: vec![Capability::RequiredResources as i32],
            }),
            ..Default::default()
        };
        request.required_resources.insert(
            lock::REQUIREMENT.to_string(),
            Resources {
                items: vec![Resource {
                    resource: json_to_struct(&lock),
                    ..Default::default()
                }],
            },
        );
        match Lock::read(&request) {
            Lock::Known(declared) => {
                // Every dependency held is one some entry of the document
                // declares, by a different source.
                let text = lock.to_string();
                for (dependency, by) in &declared {
                    prop_assert!(text.contains(&Json::String(dependency.clone()).to_string()));
                    prop_assert!(!by.contains(dependency));
                }
            }
            Lock::Pending => {
                let entries = lock["packages"].as_array().map_or(0, Vec::len);
                prop_assert!(
                    entries > lock::MAX_PACKAGES,
                    "pending with {} entries",
                    entries
                );
            }
            Lock::Unavailable => prop_assert!(false, "the capability was advertised"),
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// Layers and manifests.

/// One ustar entry: header, data, padding.
fn tar_entry(name: &str, data: &[u8], typeflag: u8) -> Vec<u8> {
    let mut header = [0u8; 512];
    let name = name.as_bytes();
    header[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    header[100..108].copy_from_slice(b"0000644\0");
    header[108..116].copy_from_slice(b"0000000\0");
    header[116..124].copy_from_slice(b"0000000\0");
    header[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    header[136..148].copy_from_slice(b"00000000000\0");
    header[156] = typeflag;
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn package_yaml() -> impl Strategy<Value = String> {
    let dep = (
        pick(&["provider", "function", "configuration", "package"]),
        pick(&[
            "xpkg.upbound.io/upbound/provider-family-aws",
            "x/y",
            "",
            "[",
            "a:b",
        ]),
        constraint_text(),
    )
        .prop_map(|(kind, path, version)| {
            format!("  - {kind}: {path:?}\n    version: {version:?}\n")
        });
    (
        pick(&["Provider", "Function", "Configuration", "Other", ""]),
        pick(&["provider-aws-s3", "", "x", "{a: b}"]),
        prop::collection::vec(dep, 0..4),
        pick(&["", "---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n", "---\n{{{", "--- [1, [2, [3]]]\n"]),
    )
        .prop_map(|(kind, name, deps, extra)| {
            format!(
                "apiVersion: meta.pkg.crossplane.io/v1\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n  dependsOn:\n{}{extra}",
                deps.concat()
            )
        })
}

#[derive(Debug, Clone)]
enum Edit {
    Flip(prop::sample::Index, u8),
    Truncate(prop::sample::Index),
    Insert(prop::sample::Index, Vec<u8>),
}

fn layer() -> impl Strategy<Value = (Vec<u8>, Compression, Vec<usize>, bool)> {
    let entries = prop::collection::vec(
        (
            pick(&[
                "package.yaml",
                "./package.yaml",
                "other",
                "dir/",
                "package.yaml/x",
                "",
            ]),
            prop_oneof![
                3 => package_yaml().prop_map(String::into_bytes),
                1 => prop::collection::vec(any::<u8>(), 0..600),
            ],
            prop::sample::select(&[b'0', b'0', b'5', b'x', b'g', b'L', b'2', 0][..]),
        ),
        0..4,
    );
    let edits = prop::collection::vec(
        prop_oneof![
            (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
            any::<prop::sample::Index>().prop_map(Edit::Truncate),
            (
                any::<prop::sample::Index>(),
                prop::collection::vec(any::<u8>(), 0..64)
            )
                .prop_map(|(i, b)| Edit::Insert(i, b)),
        ],
        0..3,
    );
    (
        entries,
        any::<bool>(),
        edits,
        prop::sample::select(&[Compression::Gzip, Compression::None, Compression::Sniff][..]),
        prop::collection::vec(1usize..3000, 1..8),
        any::<bool>(),
    )
        .prop_map(
            |(entries, gzip, edits, compression, chunks, right_digest)| {
                let mut tar = Vec::new();
                for (name, data, flag) in entries {
                    tar.extend(tar_entry(&name, &data, flag));
                }
                tar.extend([0u8; 1024]);
                let mut blob = if gzip {
                    use std::io::Write as _;
                    let mut gz =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    gz.write_all(&tar).expect("in memory");
                    gz.finish().expect("in memory")
                } else {
                    tar
                };
                for edit in edits {
                    match edit {
                        Edit::Flip(i, b) if !blob.is_empty() => {
                            let i = i.index(blob.len());
                            blob[i] ^= b;
                        }
                        Edit::Truncate(i) => blob.truncate(i.index(blob.len() + 1)),
                        Edit::Insert(i, bytes) => {
                            let at = i.index(blob.len() + 1);
                            blob.splice(at..at, bytes);
                        }
                        Edit::Flip(..) => {}
                    }
                }
                (blob, compression, chunks, right_digest)
            },
        )
}

#[test]
fn layers_never_panic_and_stay_bounded() {
    let limits = LayerLimits {
        max_compressed_bytes: 64 * 1024,
        max_uncompressed_bytes: 256 * 1024,
        max_tar_entries: 16,
        max_meta_document_bytes: 16 * 1024,
        max_yaml_depth: 16,
    };
    fuzz(
        "layers",
        layer(),
        |(bytes, compression, chunks, right_digest)| {
            let digest = if right_digest {
                blob::sha256_digest(&bytes)
            } else {
                format!("sha256:{}", "0".repeat(64))
            };
            // Whole, and streamed in uneven chunks: the same answer.
            let whole = blob::extract(&bytes, &digest, compression, limits);
            let mut reader = LayerReader::new(&digest, compression, limits)
                .map_err(|e| TestCaseError::fail(format!("new: {e}")))?;
            let mut rest = &bytes[..];
            let mut streamed = None;
            for &size in chunks.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (chunk, tail) = rest.split_at(size.min(rest.len()));
                rest = tail;
                if let Err(e) = reader.feed(chunk) {
                    streamed = Some(Err(e));
                    break;
                }
            }
            let streamed = streamed.unwrap_or_else(|| reader.finish());
            prop_assert_eq!(
                format!("{:?}", whole.as_ref().map(|m| m.as_ref().map(|m| &m.name))),
                format!(
                    "{:?}",
                    streamed.as_ref().map(|m| m.as_ref().map(|m| &m.name))
                )
            );
            if !right_digest {
                prop_assert!(whole.is_err(), "a wrong digest was accepted");
            }
            if let Ok(Some(meta)) = &whole {
                prop_assert!(meta.depends_on.len() <= 1024);
            }
            Ok(())
        },
    );
}

fn manifest_bytes() -> impl Strategy<Value = Vec<u8>> {
    let descriptor = (
        pick(&[
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.manifest.v1+json",
            "",
        ]),
        pick(&["sha256:0000", "", "sha256:zz"]),
        prop::option::of(any::<u64>()),
        prop::option::of(pick(&["base", "upbound", ""])),
        prop::option::of((pick(&["linux", "windows"]), pick(&["amd64", "arm64"]))),
    )
        .prop_map(|(mt, digest, size, annotation, platform)| {
            let mut d = json!({"mediaType": mt, "digest": digest});
            if let Some(size) = size {
                d["size"] = json!(size);
            }
            if let Some(a) = annotation {
                d["annotations"] = json!({"io.crossplane.xpkg": a});
            }
            if let Some((os, arch)) = platform {
                d["platform"] = json!({"os": os, "architecture": arch});
            }
            d
        });
    let manifest = (
        prop::option::of(pick(&[
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ])),
        prop::option::of(descriptor.clone()),
        prop::option::of(prop::collection::vec(descriptor.clone(), 0..4)),
        prop::option::of(prop::collection::vec(descriptor, 0..4)),
    )
        .prop_map(|(mt, config, manifests, layers)| {
            let mut m = json!({"schemaVersion": 2});
            if let Some(mt) = mt {
                m["mediaType"] = json!(mt);
            }
            if let Some(c) = config {
                m["config"] = c;
            }
            if let Some(v) = manifests {
                m["manifests"] = json!(v);
            }
            if let Some(v) = layers {
                m["layers"] = json!(v);
            }
            m.to_string().into_bytes()
        });
    prop_oneof![
        4 => manifest.clone(),
        1 => prop::collection::vec(any::<u8>(), 0..200),
        1 => (manifest, any::<prop::sample::Index>(), any::<u8>()).prop_map(|(mut m, i, b)| {
            let i = i.index(m.len());
            m[i] = b;
            m
        }),
    ]
}

#[test]
fn manifests_never_panic() {
    let strategy = (
        manifest_bytes(),
        prop::option::of(pick(&[
            "",
            "application/vnd.oci.image.index.v1+json",
            "text/plain",
        ])),
    );
    fuzz("manifests", strategy, |(bytes, media_type)| {
        let manifest = Manifest::new(media_type.as_deref(), bytes);
        prop_assert!(manifest.digest().starts_with("sha256:"));
        if let Ok(parsed) = manifest.parse() {
            let _ = manifest.is_index(&parsed);
            let _ = parsed.blobs().count();
            if let Some(children) = parsed.manifests.clone() {
                let _ = package_manifest(children);
            }
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// Signatures: what cosign v3.0.6 made, byte-flipped, spliced and replaced.

/// A key made by `cosign generate-key-pair`.
const COSIGN_PUB: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEa8XqzR9kNP5u1E0ieFZuMk78XLfj
uA7koJ/BZDJtngBXNRqb1YprQD++KXaZxKIBTPO0svGlDwsp5nA556oZxA==
-----END PUBLIC KEY-----
";
/// `cosign sign --new-bundle-format=false`: the payload and signature it
/// pushed for `LEGACY_DIGEST`.
const COSIGN_PAYLOAD: &str = r#"{"critical":{"identity":{"docker-reference":"127.0.0.1:41191/team/provider-a"},"image":{"docker-manifest-digest":"sha256:2e49c7cbb928dd7c25c6bea338bafa75a56dd9facb235191cf0f6df711eb00a6"},"type":"cosign container image signature"},"optional":null}"#;
const COSIGN_SIGNATURE: &str = "MEUCIFuWebtzRQ6VX0a4Aph/WKBUGU2y1wBsYbiHGfxg1qnXAiEA+DsFGlhKBAFexRUXVoWzHEK1esaSXcl+gLsNpy9TZfE=";
const LEGACY_DIGEST: &str =
    "sha256:2e49c7cbb928dd7c25c6bea338bafa75a56dd9facb235191cf0f6df711eb00a6";
/// `cosign sign --new-bundle-format`: the bundle it attached to
/// `BUNDLE_DIGEST`.
const COSIGN_BUNDLE: &str = r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"RhRMHAzvD4LoyUdqfVwvlakXiQCcnG5wbxe7ekkmLvs="}},"dsseEnvelope":{"payload":"eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEiLCJzdWJqZWN0IjpbeyJkaWdlc3QiOnsic2hhMjU2IjoiOTFmZjA5MTBkMjE5ZGRmZDU0ZmJmMTgzMjMxNDk3ODBiNTM0M2RhMmM1NThiMWU5Y2RmNmRmN2ZlMWU2NWNmMCJ9LCJhbm5vdGF0aW9ucyI6e319XSwicHJlZGljYXRlVHlwZSI6Imh0dHBzOi8vc2lnc3RvcmUuZGV2L2Nvc2lnbi9zaWduL3YxIiwicHJlZGljYXRlIjp7fX0=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"MEUCIQDyxh3DYEIXf7uwspUrZoXaC60lMrItxFKCpvgcOKJehQIgW9WqcflDPvRZyltX5yRbSXu7v3UST1hiHEauTWpl6+Q="}]}}"#;
const BUNDLE_DIGEST: &str =
    "sha256:91ff0910d219ddfd54fbf18323149780b5343da2c558b1e9cdf6df7fe1e65cf0";
/// A keyless legacy layer's certificate annotation (not a real
/// certificate: its DER is three bytes).
const KEYLESS_CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n";
/// A keyless legacy layer's Rekor bundle annotation, as cosign writes it.
const KEYLESS_REKOR: &str = r#"{"SignedEntryTimestamp":"MEUCIQ==","Payload":{"body":"eyJhcGlWZXJzaW9uIjoiMC4wLjEifQ==","integratedTime":1735689660,"logIndex":42,"logID":"c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"}}"#;
/// A keyless v0.3 bundle: a certificate, a log entry, a DSSE envelope.
const KEYLESS_BUNDLE: &str = r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"certificate":{"rawBytes":"AQID"},"tlogEntries":[{"logIndex":"42","logId":{"keyId":"wNI9atQGlz+VWfO6LRygH4QUfY/8W4RFwiT5i5WRgB0="},"kindVersion":{"kind":"hashedrekord","version":"0.0.1"},"integratedTime":"1735689660","inclusionPromise":{"signedEntryTimestamp":"MEUCIQ=="},"canonicalizedBody":"e30="}]},"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"MEUCIQ=="}]}}"#;
/// A trusted root that trusts nothing: a keyless authority over it can
/// never verify, so whatever the fuzzer makes is only read and refused.
const EMPTY_ROOT: &str = r#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","tlogs":[],"certificateAuthorities":[],"ctlogs":[],"timestampAuthorities":[]}"#;

/// `original`, with some bytes overwritten, some cut out or some inserted,
/// or random bytes instead.
fn mangled(original: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let edit = (
        any::<prop::sample::Index>(),
        0..3u8,
        prop::collection::vec(any::<u8>(), 1..4),
    );
    prop_oneof![
        1 => Just(original.as_bytes().to_vec()),
        6 => prop::collection::vec(edit, 1..4).prop_map(move |edits| {
            let mut bytes = original.as_bytes().to_vec();
            for (at, how, with) in edits {
                let i = at.index(bytes.len().max(1)).min(bytes.len());
                match how {
                    0 => {
                        for (k, b) in with.iter().enumerate() {
                            if let Some(slot) = bytes.get_mut(i + k) {
                                *slot = *b;
                            }
                        }
                    }
                    1 => {
                        let end = (i + with.len()).min(bytes.len());
                        bytes.drain(i..end);
                    }
                    _ => {
                        bytes.splice(i..i, with);
                    }
                }
            }
            bytes
        }),
        1 => prop::collection::vec(any::<u8>(), 0..300),
    ]
}

/// The parsed content of a bundle, to say whether a mangled one still
/// signs what the original does.
fn content(bytes: &[u8]) -> Option<String> {
    Bundle::parse(bytes)
        .ok()
        .map(|b| format!("{:?}", b.content))
}

/// The input's authorities: cosign's key, and a keyless one trusting
/// nothing (see [`EMPTY_ROOT`]).
fn authorities() -> function_ecr_packages::spec::verify::Verify {
    let input: Input = serde_json::from_value(serde_json::json!({"verify": {"authorities": [
        {"name": "platform", "repositories": ["*"], "key": {"publicKey": COSIGN_PUB}},
        {"name": "keyless", "repositories": ["*"], "keyless": {"trustedRoot": EMPTY_ROOT,
            "identities": [{"issuer": "https://accounts.example.com", "subjectRegExp": "@example\\.com$"}]}},
    ]}}))
    .expect("input");
    input.verify.expect("verify")
}

#[test]
fn signatures_never_panic_and_verify_only_what_the_key_signed() {
    let verify = authorities();
    let original_bundle = content(COSIGN_BUNDLE.as_bytes()).expect("cosign's bundle");
    let strategy = (
        mangled(COSIGN_PAYLOAD),
        mangled(COSIGN_SIGNATURE),
        prop_oneof![mangled(COSIGN_BUNDLE), mangled(KEYLESS_BUNDLE)],
        mangled(COSIGN_PUB),
        prop::option::of(mangled(KEYLESS_CERTIFICATE)),
        prop::option::of(mangled(KEYLESS_REKOR)),
    );
    fuzz(
        "signatures",
        strategy,
        |(payload, signature, bundle, pem, certificate, rekor)| {
            let signers = verify.signers("team/provider");
            let text = |b: Option<Vec<u8>>| b.map(|b| String::from_utf8_lossy(&b).into_owned());
            let _ = SimpleSigning::parse(&payload);
            let _ = PublicKey::from_pem(&String::from_utf8_lossy(&pem));
            let legacy = LegacySignature {
                payload: payload.clone(),
                signature: String::from_utf8_lossy(&signature).into_owned(),
                chain: text(certificate.clone()),
                certificate: text(certificate),
                rekor: text(rekor),
            };
            if let Finding::Verified { .. } = verify_legacy(&legacy, LEGACY_DIGEST, &signers) {
                prop_assert_eq!(payload.as_slice(), COSIGN_PAYLOAD.as_bytes());
            }
            if let Finding::Verified { .. } = verify_bundle(&bundle, BUNDLE_DIGEST, &signers) {
                let signed = content(&bundle);
                prop_assert_eq!(signed.as_deref(), Some(original_bundle.as_str()));
            }
            // Nothing signed for one image verifies for another.
            let crossed = verify_bundle(&bundle, LEGACY_DIGEST, &signers);
            prop_assert!(
                !matches!(crossed, Finding::Verified { .. }),
                "{:?}",
                crossed
            );
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------
// Names.

fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

#[test]
fn dns_labels_are_valid_or_empty() {
    let path = prop_oneof![
        3 => over(&["a", "z", "0", "9", "-", ".", "/", ":", "A", "_", "é", "xpkg.upbound.io/", "provider-aws-"], 0..40),
        1 => any::<String>(),
        1 => (1usize..200).prop_map(|n| "ab-".repeat(n)),
    ];
    fuzz("dns_labels", path, |path| {
        let label = dns_label(&path);
        // Like Crossplane's ToDNSLabel (`for i := range s`, by rune), the
        // cut at byte 62 is missed when a multi-byte character spans it,
        // so only ASCII paths (every path that reaches it: repository
        // grammar is ASCII) are promised at most 63 bytes.
        let promised = if path.is_ascii() {
            label.is_empty() || is_dns1123_label(&label)
        } else {
            label.is_empty() || is_dns1123_label(&label) || label.len() > 63
        };
        prop_assert!(promised, "dns_label({:?}) = {:?}", path, label);
        prop_assert!(
            label
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        );
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// References (the OCI distribution grammar of `reference.rs`).

/// Text near the grammar: components, separators, and what must never get
/// through (`..`, `/`, `?`, `#`, whitespace, `%`, `:` and digests gone
/// wrong).
fn reference_text() -> impl Strategy<Value = String> + Clone {
    let piece = prop_oneof![
        4 => "[a-z0-9]{1,6}",
        2 => pick(&["/", ".", "_", "__", "-", "--", ":", "sha256:", "sha512:"]),
        1 => "[0-9a-f]{64}",
        1 => "[0-9a-f]{128}",
        1 => pick(&["..", "/..", "../", "?", "#", " ", "\t", "\n", "%2e", "%2f", "@", "A", "\u{0}", "é"]),
        1 => any::<char>().prop_map(String::from),
    ];
    prop_oneof![
        6 => prop::collection::vec(piece, 0..12).prop_map(|p| p.concat()),
        1 => any::<String>(),
    ]
}

/// The parsers never panic, and nothing they accept carries a traversal,
/// a query, a fragment or whitespace; a digest they accept is exactly
/// sha256 or sha512 of lowercase hex.
#[test]
fn references_never_panic_nor_accept_traversals() {
    use function_ecr_packages::reference::{Digest, Reference, Repository, Tag};
    fuzz(
        "references_never_panic_nor_accept_traversals",
        reference_text(),
        |text| {
            let accepted = [
                Repository::parse(&text, "fuzz").is_ok(),
                Tag::parse(&text, "fuzz").is_ok(),
                Digest::parse(&text, "fuzz").is_ok(),
                Reference::parse(&text, "fuzz").is_ok(),
            ];
            if accepted.iter().any(|a| *a) {
                // A tag may end in `..` (`v1..`): one path segment that is not
                // a dot segment. No accepted value has a dot segment at all.
                for bad in ["/..", "../", "?", "#", "%", "@", "//"] {
                    prop_assert!(!text.contains(bad), "{text:?} accepted with {bad:?}");
                }
                prop_assert!(
                    text.split('/')
                        .all(|segment| segment != ".." && segment != "."),
                    "{text:?} has a dot segment"
                );
                prop_assert!(!text.chars().any(char::is_whitespace), "{text:?}");
                prop_assert!(!text.starts_with('/') && !text.ends_with('/'), "{text:?}");
            }
            if let Ok(digest) = Digest::parse(&text, "fuzz") {
                let (algorithm, hex) = text.split_once(':').expect("algorithm:hex");
                let want = match algorithm {
                    "sha256" => 64,
                    "sha512" => 128,
                    other => return Err(TestCaseError::fail(format!("algorithm {other}"))),
                };
                prop_assert_eq!(hex.len(), want);
                prop_assert_eq!(digest.as_str(), text.as_str());
            }
            if let Ok(Reference::Tag(_)) = Reference::parse(&text, "fuzz") {
                prop_assert!(!text.contains(':'));
            }
            Ok(())
        },
    );
}

/// A URL built from checked parts has exactly their path (nothing
/// resolved away), and reading the parts back out of it gives the same
/// checked values.
#[test]
fn reference_urls_round_trip() {
    use function_ecr_packages::reference::{self, Reference, Repository};
    let component = "[a-z0-9]{1,4}(([._]|__|-{1,3})[a-z0-9]{1,4}){0,2}";
    let repository = prop::collection::vec(component, 1..5).prop_map(|c| c.join("/"));
    let reference = prop_oneof![
        "[A-Za-z0-9_][A-Za-z0-9._-]{0,20}",
        "sha256:[0-9a-f]{64}",
        "sha512:[0-9a-f]{128}",
    ];
    fuzz(
        "reference_urls_round_trip",
        (repository, reference, reference_text()),
        |(repository, reference, dirty)| {
            let repository = Repository::parse(&repository, "fuzz").expect("grammar");
            let reference = Reference::parse(&reference, "fuzz").expect("grammar");
            let path = reference::manifest_path(&repository, &reference);
            let mut url = reqwest::Url::parse("https://registry.example").expect("url");
            url.set_path(&path);
            prop_assert_eq!(url.path(), path.as_str());
            prop_assert_eq!(url.query(), None);
            prop_assert_eq!(url.fragment(), None);
            let (repo, tail) = url
                .path()
                .strip_prefix("/v2/")
                .and_then(|p| p.rsplit_once("/manifests/"))
                .expect("shape");
            prop_assert_eq!(&Repository::parse(repo, "url").expect("back"), &repository);
            prop_assert_eq!(&Reference::parse(tail, "url").expect("back"), &reference);
            // A dirty value is either refused or, accepted, keeps the path
            // exactly too.
            if let Ok(dirty) = Reference::parse(&dirty, "fuzz") {
                let path = reference::manifest_path(&repository, &dirty);
                url.set_path(&path);
                prop_assert_eq!(url.path(), path.as_str());
            }
            Ok(())
        },
    );
}
