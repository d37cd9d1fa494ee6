# shellcheck shell=bash
# Shell helpers shared by the bench scripts (sourced, not run). Each takes what it needs as
# arguments; nothing here reads the caller's variables. Used by bench/spool_run.sh; the
# older scripts still carry their own copies.

# SIGTERM, then up to 15 s for a graceful exit, then SIGKILL.
bench_stop_pid() {
  local pid="$1"
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "bench: pid $pid ignored SIGTERM for 15 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# Up to 10 s for a server on 127.0.0.1:$1 to accept a connection; fails early if pid $2
# exited.
bench_wait_port() {
  local port="$1" pid="$2"
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

# CPU ticks (user + system, all threads) of a process: fields 14 and 15 of its stat,
# counted after the ")" that ends the command name.
bench_cpu_ticks() {
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# Field $2 (write_bytes, wchar, cancelled_write_bytes, ...) of /proc/$1/io.
bench_proc_io() {
  awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/io"
}

bench_now() { date +%s.%N; }

# The newest value of counter $3 of component $2 in the ferryd log $1 (after a SIGUSR1).
bench_counter() {
  grep -o "stats {.*" "$1" | tail -n 1 |
    grep -o "\"$2\":{[^}]*}" | grep -o "\"$3\":[0-9]*" | cut -d: -f2
}

bench_median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
    END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
