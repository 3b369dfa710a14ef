//! The `wuye` command line, run as a process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn export_schema_creates_missing_folders() {
    let root = std::env::temp_dir().join(format!("wuye-cli-{}", uuid::Uuid::now_v7().simple()));
    let out = root.join("a").join("b").join("schema.graphql");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_wuye"))
        .arg("export-schema")
        .arg(&out)
        .status()
        .expect("runs wuye");
    assert!(status.success());
    let written = std::fs::read_to_string(&out).expect("the schema was written");
    assert_eq!(written, wuye_api::http::sdl());
    let _ = std::fs::remove_dir_all(&root);
}
