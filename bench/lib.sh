# shellcheck shell=bash
# Shell helpers shared by the bench scripts (sourced, not run; every bench/*_run.sh and
# bench/run.sh use them). Each takes what it needs as arguments; nothing here reads the
# caller's variables. Helpers that can complain take the script's name for their messages
# (`who`; "bench" where it is optional and not given).

# Exits 2 unless every argument after $1 (who) is a positive integer.
bench_check_counts() {
  local who="$1" v
  shift
  for v in "$@"; do
    if ! [[ "$v" =~ ^[1-9][0-9]*$ ]]; then
      echo "$who: '$v' is not a positive integer" >&2
      exit 2
    fi
  done
}

# Exits 2 unless every argument after $1 (who) is an executable (the binaries a script runs).
bench_check_bins() {
  local who="$1" bin
  shift
  for bin in "$@"; do
    if [ ! -x "$bin" ]; then
      echo "$who: $bin is missing; build first: cmake --build build -j2" >&2
      exit 2
    fi
  done
}

# SIGTERM to pid $1, then up to 15 s for a graceful exit (ferryd flushes its outputs), then
# SIGKILL; $2 (who) names the script in the warning.
bench_stop_pid() {
  local pid="$1" who="${2:-bench}"
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$who: pid $pid ignored SIGTERM for 15 s; killing it" >&2
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

# Seconds from bench_now time $1 to $2, to the ms.
bench_elapsed() {
  awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'
}

# $1 events in the time from $2 to $3 (bench_now times), per second, to the unit.
bench_per_s() {
  awk -v n="$1" -v t0="$2" -v t1="$3" 'BEGIN { printf "%.0f", n / (t1 - t0) }'
}

# CPU-seconds per million events: bench_cpu_ticks $1 before and $2 after $3 events.
bench_cpu_s_per_m() {
  awk -v c0="$1" -v c1="$2" -v n="$3" -v tck="$(getconf CLK_TCK)" 'BEGIN {
    printf "%.4f", (c1 - c0) / tck / n * 1e6 }'
}

# $1 / $2 to two decimals, or "n/a" when $2 is not positive (a missing baseline).
bench_ratio() {
  awk -v c="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", c / b; else print "n/a" }'
}

# Field $2 of the JSON line $1 (a flat object, numbers or strings), as ferry_bench and
# ferry_heka_bench print them.
bench_json_field() {
  sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<<"$1"
}

# The newest value of counter $3 of component $2 in the ferryd log $1 (after a SIGUSR1).
bench_counter() {
  grep -o "stats {.*" "$1" | tail -n 1 |
    grep -o "\"$2\":{[^}]*}" | grep -o "\"$3\":[0-9]*" | cut -d: -f2
}

# Sends ferryd (pid $1, logging to $2) SIGUSR1 every 50 ms until its out.events_delivered
# reaches $3; fails after 120 s, saying so as $4 (who).
bench_wait_delivered() {
  local pid="$1" log="$2" want="$3" who="${4:-bench}" have=""
  for _ in $(seq 2400); do
    kill -USR1 "$pid"
    sleep 0.05
    have="$(bench_counter "$log" out events_delivered || true)"
    if [ -n "$have" ] && [ "$have" -ge "$want" ]; then return 0; fi
  done
  echo "$who: only ${have:-0} of $want events delivered after 120 s" >&2
  return 1
}

# Median of the numbers given as arguments.
bench_median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
    END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
