//! The image scan side of an [`EcrRegistry`]: `DescribeImageScanFindings`
//! for one digest, one page (ECR's largest, [`MAX_FINDINGS`]), read into a
//! [`ScanReport`]. An image never scanned (`ScanNotFoundException`) is not
//! scanned; the counts of findings the page does not list still count
//! (see `resolve::scan`), so one call is enough.

use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecr::operation::describe_image_scan_findings::DescribeImageScanFindingsOutput;
use aws_sdk_ecr::types::ImageIdentifier;

use super::client::EcrRegistry;
use super::counters::Operation;
use crate::error::{Error, Result};
use crate::registry::scan::{MAX_FINDINGS, RawFinding, RawScan, ScanReport};

const OPERATION: &str = "DescribeImageScanFindings";

impl EcrRegistry {
    /// What the scan of `repository@digest` says.
    pub(super) async fn describe_scan(&self, repository: &str, digest: &str) -> Result<ScanReport> {
        self.counters.record(Operation::DescribeImageScanFindings);
        let answer = self
            .client
            .describe_image_scan_findings()
            .registry_id(&self.registry.account_id)
            .repository_name(repository)
            .image_id(ImageIdentifier::builder().image_digest(digest).build())
            .max_results(MAX_FINDINGS as i32)
            .send()
            .await;
        match answer {
            Ok(out) => Ok(ScanReport::read(raw(&out))),
            Err(SdkError::ServiceError(service))
                if service.err().code() == Some("ScanNotFoundException") =>
            {
                Ok(ScanReport::not_scanned("NOT_FOUND"))
            }
            Err(SdkError::ServiceError(service))
                if service.err().code() == Some("ImageNotFoundException") =>
            {
                Err(Error::ImageNotFound {
                    registry: self.registry_name(),
                    repository: repository.to_string(),
                    reference: digest.to_string(),
                    message: format!(
                        "ImageNotFoundException: {}",
                        service.err().message().unwrap_or_default()
                    ),
                })
            }
            Err(e) => Err(self.sdk_error(OPERATION, repository, Some(digest), e)),
        }
    }
}

/// The answer as plain text, basic and enhanced findings alike.
fn raw(out: &DescribeImageScanFindingsOutput) -> RawScan {
    let status = out
        .image_scan_status()
        .and_then(|s| s.status())
        .map(|s| s.as_str().to_string());
    let Some(found) = out.image_scan_findings() else {
        return RawScan {
            status,
            ..RawScan::default()
        };
    };
    let counts = found
        .finding_severity_counts()
        .into_iter()
        .flatten()
        .map(|(severity, n)| (severity.as_str().to_string(), i64::from(*n)))
        .collect();
    let basic = found.findings().iter().map(|f| RawFinding {
        name: f.name().map(str::to_string),
        severity: f.severity().map(|s| s.as_str().to_string()),
        status: None,
    });
    let enhanced = found.enhanced_findings().iter().map(|f| RawFinding {
        name: f
            .package_vulnerability_details()
            .and_then(|d| d.vulnerability_id())
            .or(f.title())
            .or(f.finding_arn())
            .map(str::to_string),
        severity: f.severity().map(str::to_string),
        // An enhanced finding always has a status; one without is read as
        // standing.
        status: Some(f.status().unwrap_or("ACTIVE").to_string()),
    });
    RawScan {
        status,
        counts,
        findings: basic.chain(enhanced).take(MAX_FINDINGS).collect(),
    }
}
