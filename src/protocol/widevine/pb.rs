//! Generated prost types for `proto/license_protocol.proto` (checked in, so normal builds
//! need no `protoc`; `fresh::proto_is_fresh` fails when this file is stale).

#![allow(missing_docs, clippy::all, clippy::pedantic)]

include!("proto.rs");

#[cfg(test)]
mod fresh {
    /// Regenerates the code with the vendored `protoc` and compares it with the checked-in
    /// file. `TESSERA_REGENERATE_PROTO=1` rewrites the file instead of failing.
    #[test]
    fn proto_is_fresh() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = tempfile::tempdir().unwrap();
        let protoc = protoc_bin_vendored::protoc_bin_path().unwrap();
        let mut config = prost_build::Config::new();
        config.protoc_executable(protoc);
        config.out_dir(out.path());
        config
            .compile_protos(
                &[root.join("proto/license_protocol.proto")],
                &[root.join("proto")],
            )
            .unwrap();
        let generated = std::fs::read_to_string(out.path().join("tessera.widevine.rs")).unwrap();
        let checked_in_path = root.join("src/protocol/widevine/proto.rs");
        let checked_in = std::fs::read_to_string(&checked_in_path).unwrap();
        if std::env::var_os("TESSERA_REGENERATE_PROTO").is_some() {
            std::fs::write(&checked_in_path, generated).unwrap();
            return;
        }
        assert!(
            generated == checked_in,
            "src/protocol/widevine/proto.rs is stale: run \
             TESSERA_REGENERATE_PROTO=1 cargo test --lib proto_is_fresh"
        );
    }
}
