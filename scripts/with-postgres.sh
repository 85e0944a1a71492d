#!/usr/bin/env bash
# Run a command with a PostgreSQL server the storage tests can use (trust auth, user postgres).
#
# If one already answers at $TLSWARD_TEST_PG_HOST:$TLSWARD_TEST_PG_PORT (default 127.0.0.1:5432), use it.
# Otherwise install Debian's PostgreSQL server if needed, start a throwaway cluster in a temporary
# directory on that port (or, if the port is taken by something else, on a free one), run the command
# with TLSWARD_TEST_PG_ADMIN pointing at it, and stop and delete the cluster afterwards.
# The tests never skip for want of PostgreSQL: this script is why they do not have to.
set -euo pipefail
host="${TLSWARD_TEST_PG_HOST:-127.0.0.1}"
port="${TLSWARD_TEST_PG_PORT:-5432}"

answers() { pg_isready -q -h "$host" -p "$1" -t 3; }

if answers "$port"; then
  export TLSWARD_TEST_PG_ADMIN="${TLSWARD_TEST_PG_ADMIN:-postgresql://postgres@$host:$port/postgres}"
  exec "$@"
fi

bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  "$(dirname "$0")/install-system-deps.sh" postgresql
  bindir="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)"
fi

port_free() { ! (exec 3<>"/dev/tcp/$host/$1") 2>/dev/null; }
if ! port_free "$port"; then   # something that is not PostgreSQL holds the port: take a free one
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
fi

top="$(mktemp -d /tmp/tlsward-pg.XXXXXX)"
owner=()
if [ "$(id -u)" -eq 0 ]; then   # PostgreSQL refuses to run as root
  chown postgres: "$top"
  owner=(runuser -u postgres --)
fi
cleanup() {
  "${owner[@]}" "$bindir/pg_ctl" -D "$top/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$top"
}
trap cleanup EXIT
echo "no PostgreSQL at $host:${TLSWARD_TEST_PG_PORT:-5432}: starting a throwaway cluster on $host:$port" >&2
"${owner[@]}" "$bindir/initdb" -D "$top/data" -U postgres --auth=trust -E UTF8 >/dev/null
"${owner[@]}" "$bindir/pg_ctl" -D "$top/data" -l "$top/server.log" -w -t 60 \
  -o "-h $host -p $port -k $top -c fsync=off -c full_page_writes=off" start >/dev/null
export TLSWARD_TEST_PG_ADMIN="postgresql://postgres@$host:$port/postgres"
"$@"
