#!/usr/bin/env bash
# `make demo`: start the built-in lab, scan every case with `tlsward scan` into a throwaway inventory (SQLite),
# list what expires soon, run one monitor round that raises the alerts, check trust stores, run two drills (one
# watching tlsward's own renewal fire), issue from an internal CA, then stop the lab.
set -euo pipefail
cd "$(dirname "$0")/.."
tlsward=.venv/bin/tlsward
state_dir=$(mktemp -d "${TMPDIR:-/tmp}/tlsward-demo.XXXXXX")
export TLSWARD_LAB_DIR="$state_dir"
db="sqlite:///$state_dir/inventory.db"   # never the user's own inventory
cleanup() { "$tlsward" lab down >/dev/null 2>&1 || true; rm -rf "$state_dir"; }
trap cleanup EXIT

# A free block of ports, unless the user chose one: a lab already running elsewhere must not stop the demo.
base_port=${TLSWARD_LAB_BASE_PORT:-$(.venv/bin/python -c 'from tlsward.lab.server import find_free_plan
plan, sockets = find_free_plan("127.0.0.1")
for sock in sockets.values():
    sock.close()
print(plan.base)')}
echo "== tlsward lab up: a fresh lab PKI, every case on its own loopback port from $base_port"
"$tlsward" lab up --base-port "$base_port" >/dev/null
"$tlsward" lab list

echo
echo "== tlsward scan: every lab endpoint (names are sent as SNI; --connect reaches the lab on loopback)"
status=0
"$tlsward" lab list --targets \
  | "$tlsward" scan - --connect 127.0.0.1 --ca-file "$state_dir/pki/ca-bundle.pem" --timeout 2 \
      --save --db "$db" || status=$?
# The lab is full of broken endpoints on purpose: exit 1 (findings) and 3 (unscannable targets) are the
# expected verdicts here; anything else (2 usage, 4 environment, a crash) fails the demo.
case "$status" in
  1|3) echo; echo "== scan finished with exit code $status, as expected for the lab (see docs/exit-codes.md)";;
  *) echo "demo: unexpected exit code $status from tlsward scan" >&2; exit 1;;
esac

echo
echo "== tlsward inventory list --days-left 30: what expires within a month (from the scans just saved)"
"$tlsward" inventory list --days-left 30 --db "$db"

echo
echo "== tlsward monitor --once: one monitor round over the inventory, raising alerts (no receivers configured)"
printf '[probes]\nca_files = ["%s"]\ntimeout = "2s"\n' "$state_dir/pki/ca-bundle.pem" > "$state_dir/monitor.toml"
"$tlsward" monitor --once --config "$state_dir/monitor.toml" --db "$db" --log-level warning
"$tlsward" alerts list --db "$db"

echo
echo
echo "== tlsward scan --all-stores: which trust stores on this host (system, JDKs, certifi, Node, NSS) accept a lab chain"
echo "   (the lab root is added as one more store: the others, lacking it, are named with the reason)"
"$tlsward" scan --all-stores --store "$state_dir/pki/root.pem" --connect 127.0.0.1 --revocation off \
  "healthy-rsa.lab.tlsward.test:$((base_port + 1))" || true
echo
echo "== tlsward drill run hostname-mismatch: a fault injected on a loopback endpoint, detection and alert checked"
"$tlsward" drill run hostname-mismatch
echo
echo "== tlsward ca: an internal CA (root key encrypted with a throwaway passphrase), a server certificate from it"
TLSWARD_CA_ROOT_PASSPHRASE=demo-only-passphrase "$tlsward" ca init --name "tlsward demo" --ca-dir "$state_dir/ca" \
  --permit lab.tlsward.test --db "$db"
"$tlsward" ca issue --ca-dir "$state_dir/ca" --db "$db" --name www.lab.tlsward.test --out-dir "$state_dir/issued"
"$tlsward" ca list --ca-dir "$state_dir/ca" --db "$db"
echo
echo "== tlsward drill run cert-expiring: the 7- and 3-day alerts, then tlsward's own renewal (internal CA ->"
echo "   deploy -> reload -> verify the endpoint serves it) fires from the monitor and the alert resolves"
"$tlsward" drill run cert-expiring
echo
echo "== tlsward lab down"
"$tlsward" lab down
trap - EXIT
rm -rf "$state_dir"
