//! A test that cannot run here says so instead of passing.
//!
//! Some tests need a service or a file the machine may not have: PostgreSQL
//! (`TENDERO_TEST_DATABASE_URL`), Redis (`TENDERO_TEST_REDIS_URL`), the MiniLM model
//! (`TENDERO_TEST_MINILM_DIR`). Without it such a test calls [`skip`] and returns:
//! the line `SKIPPED <test>: <what> (<variable> not set)` goes to standard error
//! and to the file named by `TENDERO_TEST_SKIPS`, which `make test` lists at the
//! end. With `TENDERO_TEST_REQUIRE=all` (or a list such as `postgres,redis`) the
//! test fails instead: CI runs that way, so nothing it needs can be skipped.
//!
//! The library's own tests include this file too (by path), so both kinds of test
//! skip the same way.

use std::io::Write;

/// Notes that the running test needs `what` (named `requirement` in
/// `TENDERO_TEST_REQUIRE`), given by `variable`, and was not run; fails the test when
/// that requirement is required.
pub fn skip(requirement: &str, what: &str, variable: &str) {
    let test = std::thread::current()
        .name()
        .filter(|name| *name != "main")
        .unwrap_or("a test")
        .to_owned();
    let required = std::env::var("TENDERO_TEST_REQUIRE").unwrap_or_default();
    if required
        .split(',')
        .map(str::trim)
        .any(|r| r == "all" || r == requirement)
    {
        panic!("{test} needs {what}: set {variable} (TENDERO_TEST_REQUIRE={required})");
    }
    let line = format!("{test}: {what} ({variable} not set)");
    eprintln!("SKIPPED {line}");
    if let Some(path) = std::env::var_os("TENDERO_TEST_SKIPS") {
        let noted = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| writeln!(file, "{line}"));
        if let Err(err) = noted {
            eprintln!(
                "could not note the skip in {}: {err}",
                path.to_string_lossy()
            );
        }
    }
}
