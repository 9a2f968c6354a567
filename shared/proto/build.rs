//! Compiles every contract under `proto/` with protox, so a fresh machine needs no `protoc`.

use std::path::PathBuf;

const PROTO_FILES: &[&str] = &[
    "roster/directory/v1/directory.proto",
    "roster/staff/v1/staff.proto",
    "roster/audit/v1/audit.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time: `env!` would bake in the directory the build script was first
    // compiled in, and a copied target directory (another worktree) would then compile
    // that directory's contracts.
    let proto_root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    for file in PROTO_FILES {
        println!("cargo:rerun-if-changed={}", proto_root.join(file).display());
    }

    let descriptors = protox::compile(PROTO_FILES, [&proto_root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("roster_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
