//! Generated protocol code for both versions Crossplane speaks.

#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("apiextensions.r#fn.proto.v1");
}

#[allow(clippy::all, missing_docs)]
pub mod v1beta1 {
    tonic::include_proto!("apiextensions.r#fn.proto.v1beta1");
}

/// Encoded descriptors of both packages, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/function_descriptor.bin"));
