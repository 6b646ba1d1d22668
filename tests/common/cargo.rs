//! `cargo`, as a test or benchmark runs it to build another package's
//! binary. Shared by path (`#[path]`) with the GUI's tests and the bench.

use std::process::Command;

/// A `cargo` command (the one running this test, if known) without the
/// variables cargo sets for a running test or bench (`CARGO_PKG_*`,
/// `CARGO_MANIFEST_*`, ...). Build scripts that watch them (ring's does)
/// would otherwise see them change between this nested build and a plain
/// `cargo build`, and rebuild half the tree every time.
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
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
