//! Compiles `proto/` with protox (pure Rust: no protoc download or install needed) and writes
//! the descriptor set the gRPC reflection service serves.

use prost::Message;

const PROTOS: &[&str] = &[
    "job.proto",
    "job_v2.proto",
    "cluster.proto",
    "observability.proto",
    "operations.proto",
    "scheduler.proto",
    "history.proto",
    "blobs.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("mirror_neuron_descriptor.bin"),
        fds.encode_to_vec(),
    )?;
    // Default stubs answer UNIMPLEMENTED for an RPC a service does not override; services
    // override every RPC of a feature not built yet with a message that names the feature.
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .generate_default_stubs(true)
        .compile_fds(fds)?;
    Ok(())
}
