//! The scan gate: whether a version passes the input's `scan` policy, by
//! what ECR's image scan says about its digest (`registry::scan`), and the
//! versions resolution skipped for failing it.
//!
//! A finding counts when it stands (see `registry::scan::Finding`), its
//! severity is above `maxSeverity` (`INFORMATIONAL` never is; `UNDEFINED`
//! and `UNTRIAGED` count as `CRITICAL`) and `ignore` does not name it.
//! Findings ECR counts but does not list (beyond its first page) count too,
//! so a report read in one call is judged whole. The worst finding is the
//! one a reason names.

use serde::{Deserialize, Serialize};

use crate::registry::scan::{ScanReport, ScanState, Severity};
use crate::spec::limits::MAX_SKIPPED_REASON_LEN;
use crate::spec::scan::{MaxSeverity, Scan, WhenMissing};

/// A version resolution passed over, and why: one entry of
/// `status.packages[].skipped`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Skipped {
    pub version: String,
    pub reason: String,
}

impl Skipped {
    pub fn new(version: &str, reason: &str) -> Self {
        Self {
            version: version.to_string(),
            reason: reason.chars().take(MAX_SKIPPED_REASON_LEN).collect(),
        }
    }
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.version, self.reason)
    }
}

/// What the gate says of one version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Skipped, and why (`finding CVE-2024-1234 of severity CRITICAL`).
    Fail(String),
}

/// Judges a scan report by the policy.
pub fn judge(scan: &Scan, report: &ScanReport) -> Verdict {
    match &report.state {
        ScanState::NotScanned { status } => match scan.when_missing {
            WhenMissing::Allow => Verdict::Pass,
            WhenMissing::Wait => Verdict::Fail(format!("scan pending (ECR reports {status})")),
        },
        ScanState::Scanned => worst(scan, report).map_or(Verdict::Pass, Verdict::Fail),
    }
}

/// Severities from the worst down.
const WORST_FIRST: [Severity; 6] = [
    Severity::Critical,
    Severity::Undefined,
    Severity::High,
    Severity::Medium,
    Severity::Low,
    Severity::Informational,
];

/// The worst finding that counts, as a reason; none when none counts.
fn worst(scan: &Scan, report: &ScanReport) -> Option<String> {
    for severity in WORST_FIRST
        .into_iter()
        .filter(|s| counts(*s, scan.max_severity))
    {
        let listed = report.findings.iter().filter(|f| f.severity == severity);
        let mut seen = 0u64;
        for finding in listed {
            seen += 1;
            if finding.active && !scan.ignores(&finding.name) {
                return Some(format!("finding {} of severity {severity}", finding.name));
            }
        }
        let counted = report.counts.get(&severity).copied().unwrap_or(0);
        let unlisted = counted.saturating_sub(seen);
        if unlisted > 0 {
            let s = if unlisted == 1 { "" } else { "s" };
            return Some(format!(
                "{unlisted} finding{s} of severity {severity} not listed by name"
            ));
        }
    }
    None
}

/// Whether a finding of `severity` is above `max`.
fn counts(severity: Severity, max: MaxSeverity) -> bool {
    let rank = match severity {
        Severity::Informational => return false,
        Severity::Low => MaxSeverity::Low,
        Severity::Medium => MaxSeverity::Medium,
        Severity::High => MaxSeverity::High,
        Severity::Critical | Severity::Undefined => MaxSeverity::Critical,
    };
    rank > max
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::scan::{RawFinding, RawScan};

    fn policy(max: MaxSeverity, ignore: &[&str], when_missing: WhenMissing) -> Scan {
        Scan {
            repositories: vec!["*".into()],
            max_severity: max,
            ignore: ignore.iter().map(|s| s.to_string()).collect(),
            when_missing,
        }
    }

    fn enhanced(findings: &[(&str, &str, &str)], counts: &[(&str, i64)]) -> ScanReport {
        ScanReport::read(RawScan {
            status: Some("ACTIVE".into()),
            counts: counts.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
            findings: findings
                .iter()
                .map(|(name, severity, status)| RawFinding {
                    name: Some(name.to_string()),
                    severity: Some(severity.to_string()),
                    status: Some(status.to_string()),
                })
                .collect(),
        })
    }

    #[test]
    fn verdicts() {
        use MaxSeverity::*;
        use Severity as S;
        let wait = WhenMissing::Wait;
        let fail = |r: &str| Verdict::Fail(r.to_string());
        let critical = ScanReport::with_findings(&[("CVE-1", S::High), ("CVE-2", S::Critical)]);
        let cases: Vec<(&str, Scan, ScanReport, Verdict)> = vec![
            (
                "clean",
                policy(None, &[], wait),
                ScanReport::clean(),
                Verdict::Pass,
            ),
            (
                "worst is named",
                policy(Medium, &[], wait),
                critical.clone(),
                fail("finding CVE-2 of severity CRITICAL"),
            ),
            (
                "next worst once ignored",
                policy(Medium, &["CVE-2"], wait),
                critical.clone(),
                fail("finding CVE-1 of severity HIGH"),
            ),
            (
                "all ignored",
                policy(None, &["CVE-1", "CVE-2"], wait),
                critical.clone(),
                Verdict::Pass,
            ),
            (
                "tolerated",
                policy(Critical, &[], wait),
                critical.clone(),
                Verdict::Pass,
            ),
            (
                "high tolerated, critical not",
                policy(High, &[], wait),
                critical,
                fail("finding CVE-2 of severity CRITICAL"),
            ),
            (
                "informational never counts",
                policy(None, &[], wait),
                ScanReport::with_findings(&[("I", S::Informational)]),
                Verdict::Pass,
            ),
            (
                "low under none",
                policy(None, &[], wait),
                ScanReport::with_findings(&[("L", S::Low)]),
                fail("finding L of severity LOW"),
            ),
            (
                "untriaged counts as critical",
                policy(High, &[], wait),
                enhanced(&[("U", "UNTRIAGED", "ACTIVE")], &[]),
                fail("finding U of severity UNDEFINED"),
            ),
            (
                "untriaged tolerated at critical",
                policy(Critical, &[], wait),
                enhanced(&[("U", "UNTRIAGED", "ACTIVE")], &[]),
                Verdict::Pass,
            ),
            (
                "suppressed does not count",
                policy(None, &[], wait),
                enhanced(&[("S", "CRITICAL", "SUPPRESSED")], &[("CRITICAL", 1)]),
                Verdict::Pass,
            ),
            (
                "counted but unlisted counts",
                policy(High, &[], wait),
                enhanced(&[], &[("CRITICAL", 2), ("LOW", 9)]),
                fail("2 findings of severity CRITICAL not listed by name"),
            ),
            (
                "one unlisted beside an ignored one",
                policy(High, &["A"], wait),
                enhanced(&[("A", "CRITICAL", "ACTIVE")], &[("CRITICAL", 2)]),
                fail("1 finding of severity CRITICAL not listed by name"),
            ),
        ];
        for (name, scan, report, want) in cases {
            assert_eq!(judge(&scan, &report), want, "{name}");
        }
    }

    #[test]
    fn verdicts_on_missing_scans() {
        use MaxSeverity::*;
        let fail = |r: &str| Verdict::Fail(r.to_string());
        let wait = WhenMissing::Wait;
        let cases: Vec<(&str, Scan, ScanReport, Verdict)> = vec![
            (
                "pending waits",
                policy(Critical, &[], wait),
                ScanReport::not_scanned("IN_PROGRESS"),
                fail("scan pending (ECR reports IN_PROGRESS)"),
            ),
            (
                "never scanned waits",
                policy(Critical, &[], wait),
                ScanReport::not_scanned("NOT_FOUND"),
                fail("scan pending (ECR reports NOT_FOUND)"),
            ),
            (
                "missing allowed",
                policy(None, &[], WhenMissing::Allow),
                ScanReport::not_scanned("FAILED"),
                Verdict::Pass,
            ),
        ];
        for (name, scan, report, want) in cases {
            assert_eq!(judge(&scan, &report), want, "{name}");
        }
    }

    #[test]
    fn a_reason_is_bounded() {
        let long = Skipped::new("v1", &"x".repeat(5000));
        assert_eq!(long.reason.chars().count(), MAX_SKIPPED_REASON_LEN);
    }
}
