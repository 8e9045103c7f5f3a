//! Compiles the vendored Kubernetes `.proto` files (`proto/`, see
//! `src/protobuf.rs` for where they come from) into one descriptor set that
//! `src/protobuf.rs` loads to decode kubectl's protobuf request bodies.

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "api/core/v1/generated.proto",
        "api/apps/v1/generated.proto",
        "api/rbac/v1/generated.proto",
    ];
    let descriptors = protox::compile(files, ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("kubernetes.fds");
    std::fs::write(out, descriptors.encode_to_vec())?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
