//! Golden files: the interfaces scripts and bots depend on (the CLI's
//! commands and flags, the control socket's lines, `watch` events, the
//! `--json` shapes) are written out by tests and compared with files kept
//! in `node/golden/`, so that moving code cannot change them unnoticed.
//!
//! A deliberate change is accepted by running the tests once with
//! `TINCAN_BLESS=1`, which rewrites the files; the diff then shows in the
//! commit what scripts will see differently.

use std::path::{Path, PathBuf};

/// The folder holding the golden files.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden")
}

/// Compares `actual` with the golden file `name`, or rewrites the file
/// when `TINCAN_BLESS` is set.
///
/// # Panics
/// When they differ (naming the first differing line), or the file is
/// missing: this is for tests.
pub fn check(name: &str, actual: &str) {
    let path = dir().join(name);
    if std::env::var_os("TINCAN_BLESS").is_some() {
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "golden file {} unreadable ({e}); run once with TINCAN_BLESS=1 to create it",
            path.display()
        )
    });
    if expected == actual {
        return;
    }
    let first = expected
        .lines()
        .zip(actual.lines())
        .position(|(e, a)| e != a)
        .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
    panic!(
        "{} differs from what the code produces, first at line {}:\n  golden: {}\n  now:    {}\n\
         An interface scripts depend on changed. If that is meant, run the test with \
         TINCAN_BLESS=1 and commit the new file.",
        path.display(),
        first + 1,
        expected.lines().nth(first).unwrap_or("<end of file>"),
        actual.lines().nth(first).unwrap_or("<end of file>"),
    );
}
