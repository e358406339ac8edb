#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: bound to 127.0.0.1 on a free port, in a temporary
# folder, password authentication. Debian's packages provide the binaries (.ci/run installs them).
#
#   eval "$(.ci/postgres.sh start DIR)"   # prints: export OPTUNA_GAMMA_TEST_POSTGRES=postgresql://...
#   .ci/postgres.sh stop DIR
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?data folder}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bin" ] || { echo "postgres.sh: no PostgreSQL binaries under /usr/lib/postgresql" >&2; exit 1; }
as_pg() {  # initdb and postgres refuse to run as root
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$cmd" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    pw=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
    echo "$pw" > "$dir/.pw"; [ "$(id -u)" = 0 ] && chown postgres "$dir/.pw"
    as_pg "$bin/initdb" -D "$dir/data" -U optuna --pwfile="$dir/.pw" -A scram-sha-256 >/dev/null
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200 -c fsync=off" start >/dev/null
    PGPASSWORD="$pw" "$bin/createdb" -h 127.0.0.1 -p "$port" -U optuna optuna
    echo "export OPTUNA_GAMMA_TEST_POSTGRES=postgresql://optuna:$pw@127.0.0.1:$port/optuna"
    ;;
  stop)
    [ -d "$dir/data" ] && as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    rm -rf "$dir"
    ;;
  *) echo "usage: postgres.sh start|stop DIR" >&2; exit 2 ;;
esac
