#!/usr/bin/env bash
# Builds the Debian packages tincan, tincan-gui and tincan-relay with
# cargo-deb (installed when missing) from each crate's
# [package.metadata.deb] and the files in packaging/, and prints where the
# .deb files are.
#
#   scripts/package.sh                              # release build, then package
#   TINCAN_PACKAGE_PROFILE=dev scripts/package.sh   # package the debug binaries
#                                                   # scripts/test.sh built; no build
#   TINCAN_PACKAGE_TOOLS_ONLY=1 scripts/package.sh  # only install cargo-deb
#
# TINCAN_PACKAGE_OUT sets the output folder (default: $CARGO_TARGET_DIR/debian,
# i.e. target/debian). Honours CARGO_TARGET_DIR as cargo does.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

profile="${TINCAN_PACKAGE_PROFILE:-release}"
target_dir="${CARGO_TARGET_DIR:-target}"
out="${TINCAN_PACKAGE_OUT:-$target_dir/debian}"
# package  binary (in $target_dir/<profile dir>/)
packages=(
  "tincan-node tincan"
  "tincan-gui tincan-gui"
  "tincan-relay tincan-relay"
)

if ! cargo deb --version >/dev/null 2>&1; then
  # cargo-deb: the well-kept Cargo subcommand for .deb files (no debhelper
  # needed). Pinned: it warns that packaging the dev profile will become an
  # error in some later version, and the tests package the dev profile.
  echo "package: installing cargo-deb" >&2
  if ! cargo install cargo-deb --locked --version 3.8.0; then
    echo "package: could not install cargo-deb (cargo install cargo-deb --locked);" \
      "it needs crates.io" >&2
    exit 1
  fi
fi

# scripts/test.sh installs the tool before the tests run, not while they do.
if [[ -n "${TINCAN_PACKAGE_TOOLS_ONLY:-}" ]]; then
  exit 0
fi

deb_args=(--no-build -o "$out")
case "$profile" in
  release)
    profile_dir=release
    # One build for all three (the same feature set for each), where the
    # progress shows; cargo-deb then only packages.
    echo "package: building tincan, tincan-gui and tincan-relay (release; a few minutes the first time)" >&2
    cargo build --release -p tincan-node -p tincan-gui -p tincan-relay --bins
    ;;
  dev | debug)
    profile=dev
    profile_dir=debug
    # cargo-deb warns that it is meant for release builds: these packages
    # are for tests only. --fast: xz on debug builds is slow.
    deb_args+=(--profile dev --quiet --fast)
    for entry in "${packages[@]}"; do
      read -r _ bin <<<"$entry"
      if [[ ! -x "$target_dir/$profile_dir/$bin" ]]; then
        echo "package: $target_dir/$profile_dir/$bin is missing; build it first" \
          "(scripts/test.sh, or cargo build --workspace --bins)" >&2
        exit 1
      fi
    done
    ;;
  *)
    echo "package: unknown TINCAN_PACKAGE_PROFILE '$profile' (release or dev)" >&2
    exit 2
    ;;
esac

mkdir -p "$out"
debs=()
for entry in "${packages[@]}"; do
  read -r package _ <<<"$entry"
  # cargo-deb prints the path of the .deb it wrote.
  deb=$(cargo deb -p "$package" "${deb_args[@]}" | tail -n 1)
  debs+=("$deb")
done

echo "package: Debian packages ($profile profile) in $out:" >&2
printf '%s\n' "${debs[@]}"
