//! What an [`super::EcrRegistry`] counts: calls by operation, for tests,
//! benchmarks and the Prometheus counter.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::IntCounterVec;

/// Calls made by one [`EcrRegistry`](super::EcrRegistry), by operation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallCounts {
    pub list_images: u64,
    pub batch_get_image: u64,
    pub get_authorization_token: u64,
    /// GETs of a blob from the registry endpoint.
    pub blob_get: u64,
    /// Redirects (to S3) followed while reading blobs.
    pub blob_redirect: u64,
    /// Image scan reports read (the input's `scan`).
    pub describe_image_scan_findings: u64,
    /// OCI 1.1 referrers API GETs (the input's `verify`).
    pub list_referrers: u64,
}

impl CallCounts {
    /// AWS API operations plus blob GETs (redirect hops not counted).
    pub fn total(&self) -> u64 {
        self.list_images
            + self.batch_get_image
            + self.get_authorization_token
            + self.blob_get
            + self.describe_image_scan_findings
            + self.list_referrers
    }

    /// `(operation, count)` pairs, labelled as the Prometheus counter is.
    pub fn by_operation(&self) -> [(&'static str, u64); 7] {
        [
            (Operation::ListImages.name(), self.list_images),
            (Operation::BatchGetImage.name(), self.batch_get_image),
            (
                Operation::GetAuthorizationToken.name(),
                self.get_authorization_token,
            ),
            (Operation::GetBlob.name(), self.blob_get),
            (Operation::BlobRedirect.name(), self.blob_redirect),
            (
                Operation::DescribeImageScanFindings.name(),
                self.describe_image_scan_findings,
            ),
            (Operation::ListReferrers.name(), self.list_referrers),
        ]
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &CallCounts) -> CallCounts {
        CallCounts {
            list_images: self.list_images - earlier.list_images,
            batch_get_image: self.batch_get_image - earlier.batch_get_image,
            get_authorization_token: self.get_authorization_token - earlier.get_authorization_token,
            blob_get: self.blob_get - earlier.blob_get,
            blob_redirect: self.blob_redirect - earlier.blob_redirect,
            describe_image_scan_findings: self.describe_image_scan_findings
                - earlier.describe_image_scan_findings,
            list_referrers: self.list_referrers - earlier.list_referrers,
        }
    }
}

/// What a client counts.
#[derive(Clone, Copy, Debug)]
pub(super) enum Operation {
    ListImages,
    BatchGetImage,
    GetAuthorizationToken,
    GetBlob,
    BlobRedirect,
    DescribeImageScanFindings,
    ListReferrers,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::ListImages => "ListImages",
            Operation::BatchGetImage => "BatchGetImage",
            Operation::GetAuthorizationToken => "GetAuthorizationToken",
            Operation::GetBlob => "GetBlob",
            Operation::BlobRedirect => "BlobRedirect",
            Operation::DescribeImageScanFindings => "DescribeImageScanFindings",
            Operation::ListReferrers => "ListReferrers",
        }
    }
}

#[derive(Default)]
pub(super) struct Counters {
    list_images: AtomicU64,
    batch_get_image: AtomicU64,
    get_authorization_token: AtomicU64,
    blob_get: AtomicU64,
    blob_redirect: AtomicU64,
    describe_image_scan_findings: AtomicU64,
    list_referrers: AtomicU64,
    metric: Option<IntCounterVec>,
}

impl Counters {
    pub(super) fn new(metric: Option<IntCounterVec>) -> Self {
        Self {
            metric,
            ..Self::default()
        }
    }

    pub(super) fn record(&self, operation: Operation) {
        let counter = match operation {
            Operation::ListImages => &self.list_images,
            Operation::BatchGetImage => &self.batch_get_image,
            Operation::GetAuthorizationToken => &self.get_authorization_token,
            Operation::GetBlob => &self.blob_get,
            Operation::BlobRedirect => &self.blob_redirect,
            Operation::DescribeImageScanFindings => &self.describe_image_scan_findings,
            Operation::ListReferrers => &self.list_referrers,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(metric) = &self.metric {
            metric.with_label_values(&[operation.name()]).inc();
        }
    }

    pub(super) fn snapshot(&self) -> CallCounts {
        CallCounts {
            list_images: self.list_images.load(Ordering::Relaxed),
            batch_get_image: self.batch_get_image.load(Ordering::Relaxed),
            get_authorization_token: self.get_authorization_token.load(Ordering::Relaxed),
            blob_get: self.blob_get.load(Ordering::Relaxed),
            blob_redirect: self.blob_redirect.load(Ordering::Relaxed),
            describe_image_scan_findings: self.describe_image_scan_findings.load(Ordering::Relaxed),
            list_referrers: self.list_referrers.load(Ordering::Relaxed),
        }
    }
}
