#!/usr/bin/env bash
# The whole suite in two pytest runs side by side: the broker tests (marker `brokers`: real Redis and RabbitMQ,
# worker processes, two 30 s broker outages; mostly waiting) next to everything else, which pytest-xdist spreads
# over TLSWARD_TEST_WORKERS processes (default 2, one a core here: the suite waits on real servers about half the
# time), so `make test` stays well under 10 minutes on two cores (7 min; 14 min with one process). Nothing shares a
# port (each lab, nginx or proxy claims a free one by listening on it), each PostgreSQL test makes its own database,
# and only the broker tests touch the brokers. The broker run's output is printed after the main run's.
set -uo pipefail
pytest="$1"; shift
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
"$pytest" -m brokers -p no:cacheprovider "$@" >"$log" 2>&1 &
brokers=$!
"$pytest" -m "not brokers" -n "${TLSWARD_TEST_WORKERS:-2}" --durations=15 "$@"
rest=$?
wait "$brokers"
broker_status=$?
echo
echo "---------------- broker tests (run alongside) ----------------"
cat "$log"
if [ "$rest" -ne 0 ] || [ "$broker_status" -ne 0 ]; then
  exit 1
fi
