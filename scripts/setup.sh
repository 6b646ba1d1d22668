#!/usr/bin/env bash
# Installs what tincan's tests need on a Debian/Ubuntu machine (run as root).
# Idempotent: packages already installed are skipped, and `apt-get update`
# only runs when something is missing, so re-runs take well under a second.
set -euo pipefail

# Network lab (namespaces, NAT, impairments, captures) and GUI test tools.
packages=(
  iproute2 nftables iptables iputils-ping tcpdump procps
  xvfb x11-apps imagemagick xauth xdotool
  # desktop-file-validate (tests/packages.rs checks the .desktop entry).
  desktop-file-utils
  # tincan-gui's X11 keyboard handling (winit loads it at run time).
  libxkbcommon-x11-0
  # libFuzzer (the fuzz smoke run of scripts/test.sh) is C++.
  g++
)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg -s "$pkg" >/dev/null 2>&1; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} > 0)); then
  echo "setup: installing ${missing[*]}"
  # `sudo` resets the environment, so pass the frontend through `env`.
  sudo=(env DEBIAN_FRONTEND=noninteractive)
  if [[ $(id -u) -ne 0 ]]; then
    sudo=(sudo "${sudo[@]}")
  fi
  "${sudo[@]}" apt-get update -q
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust from https://rustup.rs" >&2
  exit 1
fi
