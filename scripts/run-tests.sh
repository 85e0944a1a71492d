#!/usr/bin/env bash
# The whole suite in two pytest processes side by side: the broker tests (marker `brokers`: real Redis and RabbitMQ,
# worker processes, two 30 s broker outages; mostly waiting) next to everything else, so `make test` stays well
# under 10 minutes on two cores. They never share a lab port (each lab claims its block by listening on it) and
# only the broker tests touch the brokers. The broker run's output is printed after the main run's.
set -uo pipefail
pytest="$1"; shift
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
"$pytest" -m brokers -p no:cacheprovider "$@" >"$log" 2>&1 &
brokers=$!
"$pytest" -m "not brokers" "$@"
rest=$?
wait "$brokers"
broker_status=$?
echo
echo "---------------- broker tests (run alongside) ----------------"
cat "$log"
if [ "$rest" -ne 0 ] || [ "$broker_status" -ne 0 ]; then
  exit 1
fi
