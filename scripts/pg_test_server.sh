#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL server for the registry tests (used by `make test`).
#   scripts/pg_test_server.sh start DIR PORT|auto → prints the SQLAlchemy URL on stdout
#   scripts/pg_test_server.sh stop DIR
# Installs Debian's postgresql package when no server binaries are present. The cluster
# lives in DIR (owned by the postgres user, as initdb refuses to run as root), listens on
# 127.0.0.1:PORT only and trusts local connections: it is for tests, never for data.
set -euo pipefail
action=$1
dir=$2
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$action" in
  start)
    port=$3
    if [ "$port" = auto ]; then
      port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    fi
    if [ -z "$bindir" ]; then
      echo "installing PostgreSQL (Debian package)" >&2
      if [ "$(id -u)" = 0 ]; then apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
      else sudo apt-get update -qq >&2 && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2; fi
      bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    fi
    rm -rf "$dir" && mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
    as_postgres "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 >/dev/null
    as_postgres "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=on" start >/dev/null
    as_postgres "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres critmin_test
    echo "postgresql+psycopg://postgres@127.0.0.1:$port/critmin_test"
    ;;
  stop)
    if [ -n "$bindir" ] && [ -d "$dir/data" ]; then
      as_postgres "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
