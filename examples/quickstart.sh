#!/usr/bin/env bash
# Quick start: install what mirror-neuron needs on Debian/Ubuntu, build it, and run an example
# job end to end on an embedded Redis. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v curl >/dev/null 2>&1 || missing+=(curl ca-certificates)
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing ${missing[*]}" >&2
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

# The Rust this project needs: Cargo.toml's rust-version. An older cargo (Debian 12 ships
# 1.65) fails on the manifest itself with a confusing message, so check before building.
need=$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' Cargo.toml)
cargo_ok() {
  local v
  v=$(cargo --version 2>/dev/null | awk '{print $2}') || return 1
  [ -n "$v" ] && [ "$(printf '%s\n%s\n' "$need" "$v" | sort -V | head -n1)" = "$need" ]
}
if [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi
if ! cargo_ok; then
  have=$(cargo --version 2>/dev/null || echo "no cargo")
  if command -v rustup >/dev/null 2>&1; then
    echo "==> $have is older than the Rust $need this project needs: updating the stable toolchain (rustup)" >&2
    rustup toolchain install stable --profile minimal
    rustup default stable
  else
    echo "==> $have is older than the Rust $need this project needs: installing Rust with rustup into ~/.cargo" >&2
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    export PATH="$HOME/.cargo/bin:$PATH"
    echo "==> in new shells, run '. \"\$HOME/.cargo/env\"' (or open a new login shell) before 'cargo test'" >&2
  fi
  cargo_ok || { echo "error: still no cargo >= $need on PATH ($(command -v cargo || echo none))" >&2; exit 1; }
fi

echo "==> building mirror-neuron (release)" >&2
cargo build --release --locked --bin mirror-neuron

BIN="$PWD/target/release/mirror-neuron"
echo "==> validating and running examples/research_flow" >&2
"$BIN" validate examples/research_flow
"$BIN" run examples/research_flow --wait
echo "==> the job is in the event store; list it with: $BIN job list" >&2
