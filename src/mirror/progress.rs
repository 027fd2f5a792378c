//! What `mirror` shows while it copies: a progress bar of bytes on a
//! terminal, one structured log line per event otherwise (CI, pipes).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::copied::Copied;
use super::image::Image;
use crate::oci::distribution::Pushed;
use crate::oci::xpkg::Descriptor;

/// How a run shows its progress.
pub enum Progress {
    Bar(ProgressBar),
    Log,
}

impl Progress {
    /// A bar on a terminal, logs elsewhere.
    pub fn new(total_bytes: u64) -> Self {
        if !std::io::stderr().is_terminal() {
            return Progress::Log;
        }
        let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {bytes}/{total_bytes} {msg}",
        ) {
            bar.set_style(style);
        }
        Progress::Bar(bar)
    }

    pub fn blob(&self, image: &Image, blob: &Descriptor, pushed: Pushed) {
        match (self, pushed) {
            (Progress::Bar(bar), Pushed::Uploaded(bytes)) => bar.inc(bytes),
            (Progress::Bar(_), Pushed::Mounted) => {}
            (Progress::Log, Pushed::Uploaded(bytes)) => tracing::info!(
                event = "blob uploaded",
                repository = image.repository,
                digest = blob.digest,
                bytes
            ),
            (Progress::Log, Pushed::Mounted) => tracing::info!(
                event = "blob mounted",
                repository = image.repository,
                digest = blob.digest
            ),
        }
    }

    pub fn image(&self, image: &Image, copied: &Copied) {
        match self {
            Progress::Bar(bar) => bar.set_message(image.name()),
            Progress::Log => tracing::info!(
                event = "image copied",
                repository = image.repository,
                digest = image.digest,
                present = copied.present,
                bytes = copied.bytes_uploaded,
                manifests = copied.manifests_pushed
            ),
        }
    }

    pub fn tagged(&self, image: &Image, tag: &str) {
        match self {
            Progress::Bar(bar) => bar.set_message(format!("{}:{tag}", image.repository)),
            Progress::Log => tracing::info!(
                event = "tagged",
                repository = image.repository,
                digest = image.digest,
                tag
            ),
        }
    }

    pub fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}
