# Shared by the benchmarks: scripts/lib.sh, a temp dir removed on exit
# together with the throwaway cluster, compiling small C++ helpers, and a
# line describing how busy the machine was (the figures depend on it).
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

BENCH_TMP=$(mktemp -d /tmp/pg_orch_bench.XXXXXX)
chmod 755 "$BENCH_TMP"  # the scheduler runs helpers from here as the postgres user
bench_cleanup() {
  stop_cluster
  rm -rf "$BENCH_TMP"
}
trap bench_cleanup EXIT

# compile NAME < source: builds $BENCH_TMP/NAME with g++ -O2.
compile() {
  cat > "$BENCH_TMP/$1.cpp"
  g++ -O2 -o "$BENCH_TMP/$1" "$BENCH_TMP/$1.cpp"
}

compile sync_cost <<'CPP'
// sync_cost FILE: mean microseconds of an 8 kB write + fdatasync, like a
// WAL flush at commit (100 of them, or fewer if that takes over a second).
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

static double now() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return 1;
  char block[8192];
  std::memset(block, 'x', sizeof block);
  double begin = now();
  int done = 0;
  while (done < 100 && now() - begin < 1.0) {
    if (pwrite(fd, block, sizeof block, 0) != static_cast<ssize_t>(sizeof block) || fdatasync(fd) != 0) return 1;
    ++done;
  }
  std::printf("%.0f\n", (now() - begin) / done * 1e6);
  close(fd);
  unlink(argv[1]);
  return 0;
}
CPP

# machine_state: load average and the cost of a commit's flush right now.
machine_state() {
  echo "load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores," \
       "8 kB write+fdatasync in /tmp $("$BENCH_TMP/sync_cost" "$BENCH_TMP/sync_cost.data") us"
}

# compile_stamp: $BENCH_TMP/stamp FILE writes the current CLOCK_REALTIME
# (seconds.nanoseconds) to FILE, first thing; FILEs go in $BENCH_TMP/stamps.
compile_stamp() {
  mkdir -p "$BENCH_TMP/stamps"
  chmod 777 "$BENCH_TMP/stamps"
  compile stamp <<'CPP'
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>

int main(int argc, char **argv) {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  if (argc != 2) return 2;
  char text[64];
  int length = std::snprintf(text, sizeof text, "%lld.%09ld\n", static_cast<long long>(now.tv_sec), now.tv_nsec);
  int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || write(fd, text, length) != length || close(fd) != 0) return 1;
  return 0;
}
CPP
}

# create_stamp_processes: processes stamp-1..STARTS of type bench-stamp
# (one task: $BENCH_TMP/stamp $BENCH_TMP/stamps/N), for latency_samples.
create_stamp_processes() {
  psql -v stamp="$BENCH_TMP/stamp" -v dir="$BENCH_TMP/stamps" -v starts="$STARTS" <<'SQL'
SELECT FROM orch.define_process_type('bench-stamp',
  jsonb_build_array(jsonb_build_object('name', 'stamp', 'command', jsonb_build_array(:'stamp', :'dir' || '/{{n}}'))))
\g /dev/null
SELECT count(orch.create_process('stamp-' || i, 'bench-stamp', jsonb_build_object('n', i))) FROM generate_series(1, :starts) i \g /dev/null
SQL
}

# latency_samples: the latency in ms of each of STARTS starts of processes
# stamp-1..STARTS (a stamp task each, writing $BENCH_TMP/stamps/N), one at a
# time (waiting for each), from the start's commit record
# (track_commit_timestamp) to its child's first instruction. Needs psql().
latency_samples() {
  rm -f "$BENCH_TMP"/stamps/*
  for ((i = 1; i <= STARTS; i++)); do
    echo "SELECT orch.start('stamp-$i'), pg_current_xact_id()::xid AS xid \\gset"
    echo "SELECT $i, orch.wait('stamp-$i', '10 seconds'), extract(epoch FROM pg_xact_commit_timestamp(:'xid'::xid));"
  done > "$BENCH_TMP/session.sql"
  psql -At -F' ' -f "$BENCH_TMP/session.sql" > "$BENCH_TMP/session.out"
  if grep -qv " COMPLETED " "$BENCH_TMP/session.out"; then
    echo "error: a start did not complete" >&2
    exit 1
  fi
  while read -r i status commit; do
    echo "$(cat "$BENCH_TMP/stamps/$i") $commit"
  done < "$BENCH_TMP/session.out" | awk '
    { split($1, a, "."); split($2, b, "."); print (a[1] - b[1]) * 1000 + (("0." a[2]) - ("0." b[2])) * 1000 }'
}

# percentiles: p50 and p99 of the numbers on stdin.
percentiles() {
  sort -g | awk '{ v[NR] = $1 } END { printf "%.3f %.3f\n", v[int(0.5 * NR + 0.999999)], v[int(0.99 * NR + 0.999999)] }'
}

# latency: p50 and p99 in ms of latency_samples.
latency() {
  latency_samples | percentiles
}


# burst_rate PREFIX COUNT: tasks per second of the one-task processes
# PREFIX1..PREFIXCOUNT started in one statement, until all completed.
burst_rate() {
  local last begin end
  last=$(psql -At -c "SELECT coalesce(max(id), 0) FROM orch.runs")
  begin=$(date +%s.%N)
  psql -c "SELECT count(orch.start('$1' || i)) FROM generate_series(1, $2) i" > /dev/null
  until [ "$(psql -At -c "SELECT count(*) FROM orch.runs WHERE id > $last AND status <> 'IN_PROGRESS'")" = "$2" ]; do
    sleep 0.02
  done
  end=$(date +%s.%N)
  if [ "$(psql -At -c "SELECT count(*) FROM orch.runs WHERE id > $last AND status <> 'COMPLETED'")" != 0 ]; then
    echo "error: a run of $1 did not complete" >&2
    exit 1
  fi
  awk -v n="$2" -v b="$begin" -v e="$end" 'BEGIN { printf "%.1f\n", n / (e - b) }'
}
