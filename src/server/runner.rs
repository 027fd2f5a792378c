//! The RunFunction handlers of both protocol versions, around one shared
//! [`Function`].

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::{
    function::Function,
    proto::{v1, v1beta1},
};

pub(super) type RunnerV1 = v1::function_runner_service_server::FunctionRunnerServiceServer<Runner>;
pub(super) type RunnerV1beta1 =
    v1beta1::function_runner_service_server::FunctionRunnerServiceServer<Runner>;

/// Both protocol versions' handlers, around one shared function.
pub(super) struct Runner {
    pub(super) function: Arc<Function>,
}

#[tonic::async_trait]
impl v1::function_runner_service_server::FunctionRunnerService for Runner {
    async fn run_function(
        &self,
        request: Request<v1::RunFunctionRequest>,
    ) -> Result<Response<v1::RunFunctionResponse>, Status> {
        Ok(Response::new(
            self.function.compose(request.into_inner()).await,
        ))
    }
}

#[tonic::async_trait]
impl v1beta1::function_runner_service_server::FunctionRunnerService for Runner {
    async fn run_function(
        &self,
        request: Request<v1beta1::RunFunctionRequest>,
    ) -> Result<Response<v1beta1::RunFunctionResponse>, Status> {
        let request = recode(&request.into_inner(), "v1beta1 request as v1")?;
        let response = self.function.compose(request).await;
        Ok(Response::new(recode(&response, "v1 response as v1beta1")?))
    }
}

/// v1beta1 and v1 differ only in their package name, so one's encoding is
/// the other's; going through bytes keeps fields added to the protocol
/// later from being dropped by a hand-written copy.
fn recode<T: prost::Message + Default>(
    message: &impl prost::Message,
    what: &str,
) -> Result<T, Status> {
    T::decode(message.encode_to_vec().as_slice())
        .map_err(|e| Status::internal(format!("re-encoding the {what}: {e}")))
}
