#!/usr/bin/env bash
# Sets up and starts a tincan node on this machine: installs what the
# project needs (scripts/setup.sh), builds the `tincan` binary (release) and
# runs it in the foreground. On first run `tincan init` asks for your display
# name (Enter takes your full name as the OS knows it; without a terminal
# that name is taken). Extra arguments go to `tincan run` (e.g. --no-mdns, --peer).
#
# Set TINCAN_HOME to choose the home directory (default: the platform data
# dir, e.g. ~/.local/share/tincan).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
# No -q: the first release build takes minutes (whole-program LTO), and
# cargo's progress bar (shown on a terminal) says it is not stuck.
echo "building tincan (release; a few minutes the first time)" >&2
cargo build --release -p tincan-node --bin tincan
target_dir="${CARGO_TARGET_DIR:-target}"
echo "tincan built: $target_dir/release/tincan (try: $target_dir/release/tincan peers)" >&2
"$target_dir/release/tincan" whoami >/dev/null 2>&1 || "$target_dir/release/tincan" init
exec "$target_dir/release/tincan" run "$@"
