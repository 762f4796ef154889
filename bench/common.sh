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
