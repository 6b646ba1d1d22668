#!/usr/bin/env bash
# Runs the libFuzzer targets of fuzz/ (cargo-fuzz on the stable toolchain,
# through RUSTC_BOOTSTRAP=1) for TINCAN_FUZZ_SECONDS each (default 15).
#
#   scripts/fuzz.sh                      # every target, 15 s each
#   TINCAN_FUZZ_SECONDS=600 scripts/fuzz.sh frame room_log
#   TINCAN_FUZZ_ARGS="-max_len=65536" scripts/fuzz.sh frame   # more libFuzzer flags
#
# Exits non-zero if any target crashed, and prints each crashing input; keep
# it as fuzz/regressions/TARGET/NAME (replayed by `cargo test`, see
# fuzz/README.md) once fixed. New inputs found go to target/fuzz-corpus/, not
# into the committed corpus. Installs cargo-fuzz if missing (~1.5 min of CPU;
# the first build of the core targets takes ~2.5 min of CPU, the node and
# relay ones several more). Needs a C++ compiler for libFuzzer itself.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"

seconds="${TINCAN_FUZZ_SECONDS:-15}"
read -r -a extra <<<"${TINCAN_FUZZ_ARGS:-}"
all=(frame envelope cert_chain room_log control tls_cert relay_request)
if (($# > 0)); then
  targets=("$@")
else
  targets=("${all[@]}")
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi
if ! command -v c++ >/dev/null 2>&1; then
  echo "fuzz: libFuzzer needs a C++ compiler (apt-get install g++)" >&2
  exit 1
fi

# cargo-fuzz passes nightly-only flags (-Z) to rustc; stable rustc accepts
# them with RUSTC_BOOTSTRAP. No sanitizer: tincan forbids unsafe code, and
# without ASan the targets run ~2x faster.
export RUSTC_BOOTSTRAP=1
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
failed=()
for target in "${targets[@]}"; do
  case "$target" in
    control | tls_cert) features=(--features node) ;;
    relay_request) features=(--features relay) ;;
    *) features=() ;;
  esac
  scratch="$target_dir/fuzz-corpus/$target"
  artifacts="$target_dir/fuzz-artifacts/$target/"
  # Artifacts of an earlier run would be reported as this run's crashes.
  rm -rf "$artifacts"
  mkdir -p "$scratch" "$artifacts" "regressions/$target"
  echo "fuzz: $target for ${seconds}s"
  # The first corpus directory is where libFuzzer writes what it finds;
  # the committed corpus and regressions are read only.
  if ! cargo fuzz run --sanitizer none "${features[@]}" "$target" \
    "$scratch" "corpus/$target" "regressions/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts" -print_final_stats=1 "${extra[@]}"; then
    failed+=("$target")
    for crash in "$artifacts"*; do
      [[ -e "$crash" ]] && echo "fuzz: $target crashed on $crash" >&2
    done
  fi
done

if ((${#failed[@]} > 0)); then
  echo "fuzz: crashes in ${failed[*]}; keep each input under fuzz/regressions/TARGET/" >&2
  exit 1
fi
echo "fuzz: ${targets[*]}: no crash in ${seconds}s each"
