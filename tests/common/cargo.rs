//! `cargo`, as a test or benchmark runs it to build another package's
//! binary, and whether that build can be skipped. Shared by path
//! (`#[path]`) with the GUI's tests and the bench.

use std::process::Command;

/// A `cargo` command (the one running this test, if known) without the
/// variables cargo sets for a running test or bench (`CARGO_PKG_*`,
/// `CARGO_MANIFEST_*`, ...). Build scripts that watch them (ring's does)
/// would otherwise see them change between this nested build and a plain
/// `cargo build`, and rebuild half the tree every time.
pub fn cargo() -> Command {
    without_test_env(Command::new(
        std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
    ))
}

/// `command` without the variables cargo sets for a running test or bench,
/// for a script that runs cargo (see [`cargo`]).
pub fn without_test_env(mut command: Command) -> Command {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || name.starts_with("CARGO_CRATE_")
            || name.starts_with("CARGO_BIN_")
            || name == "CARGO_PRIMARY_PACKAGE"
            || name == "CARGO_TARGET_TMPDIR"
            || name == "OUT_DIR"
        {
            command.env_remove(&*name);
        }
    }
    command
}

/// Whether the binaries the tests run are built already, so a test must
/// not run a nested `cargo build`: `scripts/test.sh` sets `TINCAN_PREBUILT=1`
/// after its `cargo build --workspace --bins --examples`.
///
/// A nested `cargo build -p tincan-node --bin tincan` (or `--example
/// ping_bot`) would not reuse that build's artifacts: `-p` unifies the
/// features of shared dependencies over the selected package alone, without
/// the GUI's dependencies (iced turns on more features of rustix, memchr,
/// smallvec, regex-syntax, ...), so tincan-node and what depends on it are
/// compiled again, once per selection: about 70 s of a first test run with
/// tests waiting on it.
#[allow(
    dead_code,
    reason = "the bench builds release binaries, never prebuilt"
)]
pub fn prebuilt() -> bool {
    std::env::var_os("TINCAN_PREBUILT").is_some_and(|v| !v.is_empty() && v != "0")
}
