//! `TANDEM_*` environment variables override the configuration file, as operators set them in
//! containers: the real binary, a real file, a real database.

use std::process::Command;

#[test]
fn an_environment_variable_overrides_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let from_file = dir.path().join("from-file.sqlite");
    let from_env = dir.path().join("from-env.sqlite");
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            r#"node_id = "ind-assoc"
display_name = "Industry Association"
database_url = "sqlite://{}?mode=rwc"
pseudonym_secret = "0123456789abcdef0123456789abcdef"
federation_key = "fedcba9876543210fedcba9876543210"
"#,
            from_file.display()
        ),
    )
    .expect("write config");
    let output = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["migrate", "node", "--config"])
        .arg(&config)
        .env(
            "TANDEM_DATABASE_URL",
            format!("sqlite://{}?mode=rwc", from_env.display()),
        )
        .output()
        .expect("run tandem");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(from_env.exists(), "the variable's database was migrated");
    assert!(!from_file.exists(), "the file's database was not touched");
}
