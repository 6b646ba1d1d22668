#!/usr/bin/env bash
# The one test command: installs missing tools, builds every binary, then runs
# every test in the workspace (unit, integration, end-to-end, netns and doc
# tests). Honours CARGO_TARGET_DIR from the environment, as cargo does.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
# tests/packages.rs packages the built binaries with cargo-deb: install it
# now (a few minutes, once) rather than inside a running test.
TINCAN_PACKAGE_TOOLS_ONLY=1 bash scripts/package.sh

cargo build --workspace --bins --examples
# The tests use these binaries as they are. Without this they run their own
# `cargo build -p tincan-node --bin tincan` (and -p tincan-relay, --example
# ping_bot), which resolves features for that package alone, so it would
# compile tincan-node and its dependents again: ~70 s with tests waiting
# (see tests/common/cargo.rs, `prebuilt`).
export TINCAN_PREBUILT=1

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
  # nextest does not run doc tests.
  cargo test --workspace --doc
else
  cargo test --workspace --all-targets
fi

# A bounded fuzz smoke run of the core decoders and the room log (libFuzzer,
# 10 s each; scripts/fuzz.sh installs cargo-fuzz when missing). Longer runs:
# TINCAN_FUZZ_SECONDS=600 scripts/fuzz.sh. TINCAN_SKIP_FUZZ=1 skips it.
if [[ -z "${TINCAN_SKIP_FUZZ:-}" ]]; then
  TINCAN_FUZZ_SECONDS="${TINCAN_FUZZ_SECONDS:-10}" scripts/fuzz.sh frame envelope cert_chain room_log
fi
