//! The one length limit every version or constraint string passes before
//! anything else looks at it.

use crate::error::Error;

/// The longest version or constraint string accepted, in bytes, wherever it
/// comes from: an XR's `spec.packages[].version`, a package.yaml
/// `dependsOn[].version`, or the command line. It is checked before
/// anything else, so a longer string costs one length comparison and is
/// refused with [`Error::InvalidConstraint`] naming this limit. 256 is
/// Masterminds' own `MaxVersionLen` and half its `MaxConstraintLen` (512):
/// real constraints are a few dozen bytes, and a constraint between 257 and
/// 512 bytes that Masterminds would accept is refused here on purpose.
pub const MAX_VERSION_LEN: usize = 256;

/// The error for a string over [`MAX_VERSION_LEN`]; the string itself is
/// shown cut short, so the error stays small whatever was sent.
pub(crate) fn too_long(text: &str) -> Error {
    let mut end = 32.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Error::InvalidConstraint {
        constraint: format!("{}...", &text[..end]),
        message: format!(
            "{} bytes is too long: a version or constraint may be at most {MAX_VERSION_LEN} bytes \
             (MAX_VERSION_LEN)",
            text.len()
        ),
    }
}
