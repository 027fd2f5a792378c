//! A layer problem: one message, which the caller turns into
//! `Error::InvalidPackage`.

use std::fmt;

/// A layer problem, as a message for `Error::InvalidPackage`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid(pub String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for Invalid {
    fn from(s: String) -> Self {
        Invalid(s)
    }
}

pub(super) type Res<T> = Result<T, Invalid>;

pub(super) fn invalid<T>(msg: impl Into<String>) -> Res<T> {
    Err(Invalid(msg.into()))
}
