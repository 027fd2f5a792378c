//! Generates the gRPC code for both protocol versions Crossplane speaks.
//!
//! `proto/` holds v1 only. v1beta1 is wire-identical and differs only in its
//! package name, so it is derived here rather than kept as a second copy that
//! could drift. protox compiles in pure Rust, so no system `protoc` is needed.

use std::{env, fs, path::PathBuf};

const V1: &str = "apiextensions/fn/proto/v1/run_function.proto";
const V1BETA1: &str = "apiextensions/fn/proto/v1beta1/run_function.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    let v1_source = fs::read_to_string(PathBuf::from("proto").join(V1))?;
    let v1beta1_source = v1_source.replacen(
        "package apiextensions.fn.proto.v1;",
        "package apiextensions.fn.proto.v1beta1;",
        1,
    );
    if v1beta1_source == v1_source {
        return Err(
            "proto/v1 has no `package apiextensions.fn.proto.v1;` line to derive v1beta1 from"
                .into(),
        );
    }
    let derived_root = out_dir.join("proto");
    let v1beta1_path = derived_root.join(V1BETA1);
    fs::create_dir_all(v1beta1_path.parent().expect("V1BETA1 has a parent"))?;
    fs::write(&v1beta1_path, v1beta1_source)?;

    let descriptors = protox::compile([V1, V1BETA1], [PathBuf::from("proto"), derived_root])?;
    // Server reflection serves these descriptors to grpcurl and friends.
    fs::write(
        out_dir.join("function_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;

    tonic_prost_build::configure()
        // Ordered maps make encoding deterministic: the same answer to the
        // same question is the same bytes, call after call.
        .btree_map(".")
        // Objects as lists of entries, not B-trees: see src/sdk/protobuf.rs.
        .extern_path(".google.protobuf.Struct", "crate::sdk::protobuf::Struct")
        // Read from the message's bytes, not through tonic's DecodeBuf.
        .codec_path("crate::server::codec::ProtoCodec")
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
