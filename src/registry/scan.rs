//! What ECR's image scan says about one image, as the supply-chain gate
//! reads it: whether a scan is finished, the findings it lists and the
//! count of findings by severity.
//!
//! Basic scanning (`findings`, severity an enum) and enhanced scanning
//! through Inspector (`enhancedFindings`, severity a string, a status per
//! finding) are read into one [`ScanReport`]. Only a scan whose status is
//! `COMPLETE` (basic) or `ACTIVE` (enhanced) counts as scanned. Reading
//! never fails and never panics: an unknown severity is
//! [`Severity::Undefined`], a negative count is 0, names are cut to
//! [`MAX_FINDING_NAME_LEN`] characters and at most [`MAX_FINDINGS`] findings
//! are kept, so what the registry answers costs bounded memory.

use std::collections::BTreeMap;

use crate::spec::limits::MAX_FINDING_NAME_LEN;

/// Findings one report keeps: ECR's largest page.
pub const MAX_FINDINGS: usize = 1000;
/// Characters of a scan status kept (ECR's are at most 25).
const MAX_STATUS_LEN: usize = 32;

/// A finding's severity, least to most severe; `Undefined` is what ECR
/// calls `UNDEFINED` or `UNTRIAGED`, and any name it adds later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
    Undefined,
}

impl Severity {
    /// Reads ECR's name for a severity (either scan type's).
    pub fn parse(name: &str) -> Self {
        match name {
            "INFORMATIONAL" => Severity::Informational,
            "LOW" => Severity::Low,
            "MEDIUM" => Severity::Medium,
            "HIGH" => Severity::High,
            "CRITICAL" => Severity::Critical,
            _ => Severity::Undefined,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Informational => "INFORMATIONAL",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
            Severity::Undefined => "UNDEFINED",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the image has a finished scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanState {
    /// `COMPLETE` or `ACTIVE`: the findings are the scan's.
    Scanned,
    /// No finished scan: ECR's status (`IN_PROGRESS`, `FAILED`,
    /// `UNSUPPORTED_IMAGE`, ...), or `NOT_FOUND` when none was started.
    NotScanned { status: String },
}

/// One finding listed by the scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// `CVE-2024-1234`; an enhanced finding's vulnerability id, else its
    /// title, else its ARN.
    pub name: String,
    pub severity: Severity,
    /// Whether it stands: every basic finding, an enhanced one only while
    /// `ACTIVE` (not `SUPPRESSED` or `CLOSED`).
    pub active: bool,
}

/// What the scan of one image says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanReport {
    pub state: ScanState,
    /// At most [`MAX_FINDINGS`], in the order ECR lists them.
    pub findings: Vec<Finding>,
    /// ECR's `findingSeverityCounts`: findings by severity, listed or not.
    pub counts: BTreeMap<Severity, u64>,
}

impl ScanReport {
    /// An image with no finished scan, with ECR's status for it.
    pub fn not_scanned(status: &str) -> Self {
        Self {
            state: ScanState::NotScanned {
                status: cut(status, MAX_STATUS_LEN),
            },
            findings: Vec::new(),
            counts: BTreeMap::new(),
        }
    }

    /// A finished scan with no finding.
    pub fn clean() -> Self {
        Self {
            state: ScanState::Scanned,
            findings: Vec::new(),
            counts: BTreeMap::new(),
        }
    }

    /// A finished scan listing `findings` (each counted), for tests and the
    /// in-memory registry.
    pub fn with_findings(findings: &[(&str, Severity)]) -> Self {
        let raw = RawScan {
            status: Some("COMPLETE".to_string()),
            counts: Vec::new(),
            findings: findings
                .iter()
                .map(|(name, severity)| RawFinding {
                    name: Some(name.to_string()),
                    severity: Some(severity.as_str().to_string()),
                    status: None,
                })
                .collect(),
        };
        let mut report = Self::read(raw);
        for finding in &report.findings {
            *report.counts.entry(finding.severity).or_default() += 1;
        }
        report
    }

    /// Reads a `DescribeImageScanFindings` answer (see the module
    /// documentation); never fails.
    pub fn read(raw: RawScan) -> Self {
        let status = raw.status.unwrap_or_default();
        let state = match status.as_str() {
            "COMPLETE" | "ACTIVE" => ScanState::Scanned,
            "" => ScanState::NotScanned {
                status: "UNKNOWN".to_string(),
            },
            other => ScanState::NotScanned {
                status: cut(other, MAX_STATUS_LEN),
            },
        };
        let mut counts: BTreeMap<Severity, u64> = BTreeMap::new();
        for (severity, count) in raw.counts {
            let count = u64::try_from(count).unwrap_or(0);
            let entry = counts.entry(Severity::parse(&severity)).or_default();
            *entry = entry.saturating_add(count);
        }
        let findings = raw
            .findings
            .into_iter()
            .take(MAX_FINDINGS)
            .map(RawFinding::read)
            .collect();
        Self {
            state,
            findings,
            counts,
        }
    }
}

/// A `DescribeImageScanFindings` answer as plain text, whichever the scan
/// type: what [`ScanReport::read`] reads.
#[derive(Clone, Debug, Default)]
pub struct RawScan {
    /// `imageScanStatus.status`.
    pub status: Option<String>,
    /// `findingSeverityCounts`.
    pub counts: Vec<(String, i64)>,
    /// `findings` and `enhancedFindings`.
    pub findings: Vec<RawFinding>,
}

/// One finding as ECR lists it.
#[derive(Clone, Debug, Default)]
pub struct RawFinding {
    pub name: Option<String>,
    pub severity: Option<String>,
    /// An enhanced finding's status; `None` for a basic one.
    pub status: Option<String>,
}

impl RawFinding {
    fn read(self) -> Finding {
        let name = self.name.filter(|n| !n.trim().is_empty()).map_or_else(
            || "unnamed finding".to_string(),
            |n| cut(&n, MAX_FINDING_NAME_LEN),
        );
        Finding {
            name,
            severity: Severity::parse(self.severity.as_deref().unwrap_or_default()),
            active: self.status.as_deref().is_none_or(|s| s == "ACTIVE"),
        }
    }
}

/// `text`, cut to `max` characters.
fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn finding(name: &str, severity: &str, status: Option<&str>) -> RawFinding {
        RawFinding {
            name: Some(name.to_string()),
            severity: Some(severity.to_string()),
            status: status.map(str::to_string),
        }
    }

    #[test]
    fn states_by_status() {
        let cases = [
            (Some("COMPLETE"), ScanState::Scanned),
            (Some("ACTIVE"), ScanState::Scanned),
            (Some("IN_PROGRESS"), not("IN_PROGRESS")),
            (Some("PENDING"), not("PENDING")),
            (Some("FAILED"), not("FAILED")),
            (Some("UNSUPPORTED_IMAGE"), not("UNSUPPORTED_IMAGE")),
            (Some("complete"), not("complete")),
            (Some(""), not("UNKNOWN")),
            (None, not("UNKNOWN")),
        ];
        fn not(status: &str) -> ScanState {
            ScanState::NotScanned {
                status: status.to_string(),
            }
        }
        for (status, want) in cases {
            let raw = RawScan {
                status: status.map(str::to_string),
                ..RawScan::default()
            };
            assert_eq!(ScanReport::read(raw).state, want, "{status:?}");
        }
    }

    #[test]
    fn basic_and_enhanced_findings_read_alike() {
        let raw = RawScan {
            status: Some("ACTIVE".into()),
            counts: vec![
                ("CRITICAL".into(), 2),
                ("UNTRIAGED".into(), 1),
                ("UNDEFINED".into(), 1),
                ("LOW".into(), -4),
            ],
            findings: vec![
                finding("CVE-1", "CRITICAL", None),
                finding("CVE-2", "CRITICAL", Some("SUPPRESSED")),
                finding("CVE-3", "HIGH", Some("ACTIVE")),
                finding(" ", "MEDIUM", None),
                finding("CVE-4", "Bad", Some("CLOSED")),
            ],
        };
        let report = ScanReport::read(raw);
        assert_eq!(report.state, ScanState::Scanned);
        assert_eq!(
            report.counts,
            BTreeMap::from([
                (Severity::Low, 0),
                (Severity::Critical, 2),
                (Severity::Undefined, 2)
            ])
        );
        let read: Vec<(&str, Severity, bool)> = report
            .findings
            .iter()
            .map(|f| (f.name.as_str(), f.severity, f.active))
            .collect();
        assert_eq!(
            read,
            vec![
                ("CVE-1", Severity::Critical, true),
                ("CVE-2", Severity::Critical, false),
                ("CVE-3", Severity::High, true),
                ("unnamed finding", Severity::Medium, true),
                ("CVE-4", Severity::Undefined, false),
            ]
        );
    }

    #[test]
    fn with_findings_counts_them() {
        let report =
            ScanReport::with_findings(&[("CVE-1", Severity::High), ("CVE-2", Severity::High)]);
        assert_eq!(report.counts, BTreeMap::from([(Severity::High, 2)]));
        assert_eq!(report.findings.len(), 2);
    }

    fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("CRITICAL".to_string()),
            Just("HIGH".to_string()),
            Just("ACTIVE".to_string()),
            Just("COMPLETE".to_string()),
            ".{0,300}",
        ]
    }

    fn any_finding() -> impl Strategy<Value = RawFinding> {
        (
            proptest::option::of(any_text()),
            proptest::option::of(any_text()),
            proptest::option::of(any_text()),
        )
            .prop_map(|(name, severity, status)| RawFinding {
                name,
                severity,
                status,
            })
    }

    proptest! {
        /// Whatever ECR answers, reading it never panics and keeps a
        /// bounded report.
        #[test]
        fn reading_never_panics_and_is_bounded(
            status in proptest::option::of(any_text()),
            counts in proptest::collection::vec((any_text(), any::<i64>()), 0..20),
            findings in proptest::collection::vec(any_finding(), 0..40),
            extra in 0usize..1200,
        ) {
            let mut findings = findings;
            if let Some(first) = findings.first().cloned() {
                findings.extend(std::iter::repeat_n(first, extra));
            }
            let report = ScanReport::read(RawScan { status, counts, findings });
            prop_assert!(report.findings.len() <= MAX_FINDINGS);
            prop_assert!(report.counts.len() <= 6);
            for f in &report.findings {
                prop_assert!(!f.name.is_empty());
                prop_assert!(f.name.chars().count() <= MAX_FINDING_NAME_LEN);
            }
            if let ScanState::NotScanned { status } = &report.state {
                prop_assert!(status.chars().count() <= MAX_STATUS_LEN);
            }
        }
    }
}
