#!/usr/bin/env bash
# `make demo`: start the built-in lab, show it, probe every case, stop it. Non-interactive.
set -euo pipefail
cd "$(dirname "$0")/.."
tlsward=.venv/bin/tlsward
state_dir=$(mktemp -d "${TMPDIR:-/tmp}/tlsward-demo.XXXXXX")
export TLSWARD_LAB_DIR="$state_dir"
cleanup() { "$tlsward" lab down >/dev/null 2>&1 || true; rm -rf "$state_dir"; }
trap cleanup EXIT

echo "== tlsward lab up: fresh PKI, ${TLSWARD_LAB_BASE_PORT:-18400} and up on 127.0.0.1"
"$tlsward" lab up
echo
echo "== tlsward lab check: every case, probed over the network"
"$tlsward" lab check
echo
echo "== tlsward lab down"
"$tlsward" lab down
trap - EXIT
rm -rf "$state_dir"
