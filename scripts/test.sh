#!/usr/bin/env bash
# The one test command: installs missing tools, builds every binary, then runs
# every test in the workspace (unit, integration, end-to-end, netns and doc
# tests). Honours CARGO_TARGET_DIR from the environment, as cargo does.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

cargo build --workspace --bins --examples

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
  # nextest does not run doc tests.
  cargo test --workspace --doc
else
  cargo test --workspace --all-targets
fi
