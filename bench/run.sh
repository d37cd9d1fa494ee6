#!/usr/bin/env bash
# Forward-input benchmark: for each path, runs the baseline sink and then ferryd under the
# same ferry_bench load, and prints events/s, server CPU-s per 1M events and their ratios.
# Builds nothing: expects build/ferryd and build/ferry_bench (cmake --build build -j2).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

usage() {
  cat <<'EOF'
usage: bench/run.sh [--events N] [--message-events M] [--repeat R] [--window W] [--json FILE]
  --events N          events per run on the batched paths (default 10000000)
  --message-events M  events per run on the Message path (default N/20: one event per
                      request costs ~20x more per event, so this keeps the runs similar)
  --repeat R          sink/ferryd pairs per path; the table shows medians (default 3)
  --window W          requests awaiting their ack per connection (default 64)
  --json FILE         also append every run's JSON line (with "path" and "server") to FILE
EOF
}

EVENTS=10000000
MESSAGE_EVENTS=""
REPEAT=3
WINDOW=64
JSON_OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --events) EVENTS="${2:-}"; shift 2 ;;
    --message-events) MESSAGE_EVENTS="${2:-}"; shift 2 ;;
    --repeat) REPEAT="${2:-}"; shift 2 ;;
    --window) WINDOW="${2:-}"; shift 2 ;;
    --json) JSON_OUT="${2:-}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench/run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
MESSAGE_EVENTS="${MESSAGE_EVENTS:-$((EVENTS / 20))}"
bench_check_counts bench/run.sh "$EVENTS" "$MESSAGE_EVENTS" "$REPEAT" "$WINDOW"

# Overridable to compare another build (e.g. FERRYD=build-old/ferryd) in the same run.
FERRYD="${FERRYD:-build/ferryd}"
BENCH="${FERRY_BENCH:-build/ferry_bench}"
bench_check_bins bench/run.sh "$FERRYD" "$BENCH"

tmp="$(mktemp -d)"
server_pid=""
result=""

stop_server() {
  bench_stop_pid "$server_pid" bench/run.sh
  server_pid=""
}
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  stop_server
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_sink() {
  "$BENCH" sink --port "$1" >/dev/null 2>>"$tmp/sink.log" &
  server_pid=$!
}

# $2: NullOutput, or FileOutput (writes every event as a JSON line to /dev/null).
start_ferryd() {
  local port="$1" output="$2" conf="$tmp/ferry.toml"
  {
    printf '[ferry]\nlog_level = "warn"\n'
    printf '[in]\ntype = "ForwardInput"\naddress = "127.0.0.1:%s"\nmax_connections = 64\n' "$port"
    printf '[out]\ntype = "%s"\nmatch = "**"\n' "$output"
    if [ "$output" = FileOutput ]; then printf 'path = "/dev/null"\n'; fi
  } >"$conf"
  "$FERRYD" -c "$conf" >>"$tmp/ferryd.log" 2>&1 &
  server_pid=$!
}

# One run: start the server, load it, stop it. Sets `result` to the JSON line, or to ""
# on failure (a global, not stdout, so the server is our child and cleanup can stop it).
measure() {
  local path="$1" server="$2" output="$3" mode="$4" events="$5" batch="$6" port line=""
  port="$("$BENCH" free-port)"
  if [ "$server" = sink ]; then start_sink "$port"; else start_ferryd "$port" "$output"; fi
  if bench_wait_port "$port" "$server_pid"; then
    line="$("$BENCH" load --port "$port" --mode "$mode" --events "$events" --batch "$batch" \
      --ack --window "$WINDOW" --pid "$server_pid" --timeout 300)" || line=""
  else
    echo "bench/run.sh: $server did not accept connections on 127.0.0.1:$port" >&2
  fi
  stop_server
  if [ -z "$line" ]; then
    echo "bench/run.sh: $path on $server failed; last lines of its log:" >&2
    tail -n 5 "$tmp/$server.log" >&2 2>/dev/null || true
  fi
  if [ -n "$line" ] && [ -n "$JSON_OUT" ]; then
    echo "{\"path\":\"$path\",\"server\":\"$server\",${line#\{}" >>"$JSON_OUT"
  fi
  result="$line"
}

# label|output|mode|batch|events
paths=(
  "message (1/req)|NullOutput|message|1|$MESSAGE_EVENTS"
  "forward (B=1000)|NullOutput|forward|1000|$EVENTS"
  "packed (B=1000)|NullOutput|packed|1000|$EVENTS"
  "packed-gzip (B=1000)|NullOutput|packed-gzip|1000|$EVENTS"
  "packed -> FileOutput|FileOutput|packed|1000|$EVENTS"
)

echo "ferry forward benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, acks on," \
  "window $WINDOW, 1 connection, median of $REPEAT sink/ferryd pairs per path"
echo "CPU = CPU-seconds of the whole server process (all threads) per 1M events."
echo
fmt='%-22s %9s %12s %12s %7s %9s %10s %8s\n'
# shellcheck disable=SC2059  # the format is ours, not data
printf "$fmt" path events sink-ev/s ferryd-ev/s "ev/s x" sink-CPU ferryd-CPU "CPU x"
failed=0
for p in "${paths[@]}"; do
  IFS='|' read -r label output mode batch events <<<"$p"
  s_eps=() f_eps=() s_cpu=() f_cpu=()
  # Sink and ferryd alternate, so a slow spell on the machine hits both sides alike.
  for _ in $(seq "$REPEAT"); do
    measure "$label" sink "$output" "$mode" "$events" "$batch"
    sink="$result"
    measure "$label" ferryd "$output" "$mode" "$events" "$batch"
    ferry="$result"
    if [ -z "$sink" ] || [ -z "$ferry" ]; then continue; fi
    # The sink can spend less than a clock tick in a whole run, so the table uses the
    # ns-resolution CPU clock; /proc/PID/stat's tick figure is in the JSON (server_cpu_s).
    s_eps+=("$(bench_json_field "$sink" events_per_s)")
    f_eps+=("$(bench_json_field "$ferry" events_per_s)")
    s_cpu+=("$(bench_json_field "$sink" server_cpu_clock_s_per_m_events)")
    f_cpu+=("$(bench_json_field "$ferry" server_cpu_clock_s_per_m_events)")
  done
  if [ "${#s_eps[@]}" -ne "$REPEAT" ]; then
    # shellcheck disable=SC2059
    printf "$fmt" "$label" "$events" FAILED - - - - -
    failed=1
    continue
  fi
  awk -v fmt="$fmt" -v l="$label" -v n="$events" -v se="$(bench_median "${s_eps[@]}")" \
    -v fe="$(bench_median "${f_eps[@]}")" -v sc="$(bench_median "${s_cpu[@]}")" \
    -v fc="$(bench_median "${f_cpu[@]}")" 'BEGIN {
      ratio = (sc > 0) ? sprintf("%.1f", fc / sc) : "n/a"
      printf fmt, l, n, sprintf("%.0f", se), sprintf("%.0f", fe), sprintf("%.2f", fe / se),
        sprintf("%.4f", sc), sprintf("%.4f", fc), ratio
    }'
done
echo
echo "ev/s x = ferryd events/s / sink events/s (below 1: ferryd is slower)."
echo "CPU x  = ferryd CPU per event / sink CPU per event (how many times the floor it costs)."
exit "$failed"
