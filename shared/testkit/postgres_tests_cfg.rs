//! The build script of every crate whose tests use `roster_testkit::on_both_databases!`
//! (named by `package.build` in its Cargo.toml, so the crates share this one file).
//!
//! It sets `cfg(roster_postgres_tests)` when `ROSTER_TEST_DATABASE_URL` is set. Without it
//! the PostgreSQL half of every test is compiled as ignored, so `cargo test` reports it as
//! skipped instead of counting a test that did not run as a pass.

fn main() {
    println!("cargo::rerun-if-env-changed=ROSTER_TEST_DATABASE_URL");
    println!("cargo::rustc-check-cfg=cfg(roster_postgres_tests)");
    if std::env::var_os("ROSTER_TEST_DATABASE_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=roster_postgres_tests");
    }
}
