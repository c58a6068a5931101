//! The committed `schema.graphql` is exactly what the binary serves.

use std::process::Command;

#[test]
fn schema_file_matches_the_served_schema() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql exists at the repository root");
    let current = portcullis::graphql::sdl();
    assert!(
        committed == current,
        "schema.graphql is out of date: regenerate it with `cargo run -- schema > schema.graphql`"
    );
}

#[test]
fn cli_schema_prints_the_sdl() {
    let output = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("schema")
        .output()
        .expect("run portcullis schema");
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        portcullis::graphql::sdl()
    );
}
