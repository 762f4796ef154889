# Shared by the scripts: installing dependencies, building, and throwaway
# PostgreSQL clusters. Servers run as the postgres OS user (PostgreSQL
# refuses root), with their data directory and socket under /tmp, on a free
# port, and are always stopped by stop_cluster (call it from a trap).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The Debian release's own PostgreSQL (15 on Debian 12, 17 on Debian 13):
# `postgresql` and `postgresql-server-dev-all` name its major, and so does
# the clang of libFuzzer's runtime (libclang-rt-dev).
DEPENDENCIES=(postgresql postgresql-server-dev-all libipc-run-perl make g++ cmake libgtest-dev
              nlohmann-json3-dev zlib1g-dev libcurl4-openssl-dev clang libclang-rt-dev tzdata
              slurmctld slurmd slurm-client munge)  # a single-node Slurm for the tests

# PG_BIN: the installed major's programs, put first in PATH. postgresql-common's
# pg_config names the newest installed major (none yet: install_dependencies
# sets it once it has installed one).
use_installed_postgresql() {
  PG_BIN=$(pg_config --bindir 2>/dev/null) || return 0
  export PATH="$PG_BIN:$PATH"
}
use_installed_postgresql

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install_dependencies() {
  local missing=()
  for package in "${DEPENDENCIES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}"
    as_root apt-get update -qq
    # Packages start their daemons (PostgreSQL's cluster, Slurm, munge)
    # unless a policy says no: the tests start their own.
    local policy=/usr/sbin/policy-rc.d added=""
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
      as_root chmod 755 "$policy"
      added=1
    fi
    local status=0
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
      status=$?
    [ -z "$added" ] || as_root rm -f "$policy"
    [ "$status" = 0 ] || return "$status"
  fi
  use_installed_postgresql
  echo "== PostgreSQL $("$PG_BIN/pg_config" --version | awk '{print $2}') ($PG_BIN)"
}

build_and_install() {
  echo "== building and installing pg_orch"
  # In CI a compiler warning fails the build.
  make -C "$ROOT" -s -j"$(nproc)" PG_CONFIG="$PG_BIN/pg_config" WERROR="$([ "${CI:-}" = true ] && echo 1)" >/dev/null
  as_root make -C "$ROOT" -s install PG_CONFIG="$PG_BIN/pg_config" >/dev/null
}

run_as_postgres() { if [ "$(id -un)" = postgres ]; then "$@"; else as_root runuser -u postgres -- "$@"; fi; }

free_port() {
  local port
  for port in $(seq 54320 54999); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && [ ! -e "/tmp/.s.PGSQL.$port" ]; then
      echo "$port"
      return 0
    fi
  done
  echo "no free port" >&2
  return 1
}

# start_cluster [extra postgresql.conf lines...]: a new cluster with pg_orch
# preloaded (a scheduler starts in each database that has the extension).
# Sets PGHOST, PGPORT, PGUSER, CLUSTER_DIR.
start_cluster() {
  CLUSTER_DIR=$(mktemp -d /tmp/pg_orch_cluster.XXXXXX)
  chmod 755 "$CLUSTER_DIR"
  as_root chown postgres: "$CLUSTER_DIR"
  PGPORT=$(free_port)
  PGHOST=$CLUSTER_DIR
  PGUSER=postgres
  export PGHOST PGPORT PGUSER CLUSTER_DIR
  run_as_postgres initdb -D "$CLUSTER_DIR/data" -A trust -U postgres >/dev/null
  {
    echo "port = $PGPORT"
    echo "listen_addresses = ''"
    echo "unix_socket_directories = '$CLUSTER_DIR'"
    echo "shared_preload_libraries = 'pg_orch'"
    for line in "$@"; do echo "$line"; done
  } | run_as_postgres tee -a "$CLUSTER_DIR/data/postgresql.conf" >/dev/null
  run_as_postgres pg_ctl -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w start >/dev/null
}

stop_cluster() {
  [ -n "${CLUSTER_DIR:-}" ] && [ -d "$CLUSTER_DIR/data" ] || return 0
  run_as_postgres pg_ctl -D "$CLUSTER_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  as_root rm -rf "$CLUSTER_DIR"
  CLUSTER_DIR=
}
