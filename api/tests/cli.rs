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

#[test]
fn committed_configuration_reference_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/CONFIGURATION.md"))
        .expect("deploy/CONFIGURATION.md");
    assert!(
        committed == wuye_api::kit::config::reference(),
        "deploy/CONFIGURATION.md is stale: run `cargo run -p wuye-api -- config-reference`"
    );
    // every setting the code reads is there, nested ones by their variable
    for needle in [
        "`WUYE_DATABASE_URL`",
        "`WUYE_LIMITS__PERSISTED_ONLY`",
        "`WUYE_STORAGE__BUCKET`",
        "`WUYE_PAY__WECHAT__<COMPANY>__",
    ] {
        assert!(committed.contains(needle), "{needle}");
    }
}
