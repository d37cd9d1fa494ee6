#!/usr/bin/env bash
# Heka benchmark: framed protobuf into ferryd's TcpInput, out through TcpOutput (the relay)
# or FileOutput to /dev/null (the Fluentd-shaped path), against a counting sink as the
# floor. Prints messages/s and ferryd CPU-s per 1M messages. Builds nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

usage() {
  cat <<'EOF'
usage: bench/heka_run.sh [--messages N] [--repeat R] [--window-mib W] [--json FILE]
  --messages N   messages per run (default 1000000)
  --repeat R     runs per path; the table shows medians (default 3)
  --window-mib W on the baseline and heka->heka, the sender stays at most W MiB ahead of
                 what the sink received (default 16; 0 = open loop, which can make
                 TcpOutput drop when the sink falls behind: see "delivered")
  --json FILE    also append every run's JSON line to FILE
Paths, each with heka-flood's fixed message (~1070 B) and a small one (~180 B):
  baseline       load -> counting sink (no ferryd; CPU = the sink thread's)
  heka->heka     load -> ferryd TcpInput -> TcpOutput -> sink (the relay, bytes as received)
  heka->null     load -> TcpInput -> NullOutput (the input's cost alone)
  heka->file     load -> TcpInput -> FileOutput /dev/null (each message bridged to a
                 Fluentd record and written as a JSON line: the bridge path, standing in
                 for heka -> ForwardOutput until that output exists)
EOF
}

MESSAGES=1000000
REPEAT=3
WINDOW_MIB=16
JSON_OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --messages) MESSAGES="${2:-}"; shift 2 ;;
    --repeat) REPEAT="${2:-}"; shift 2 ;;
    --window-mib) WINDOW_MIB="${2:-}"; shift 2 ;;
    --json) JSON_OUT="${2:-}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench/heka_run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
if ! [[ "$WINDOW_MIB" =~ ^[0-9]+$ ]]; then
  echo "bench/heka_run.sh: '$WINDOW_MIB' is not a number" >&2
  exit 2
fi
bench_check_counts bench/heka_run.sh "$MESSAGES" "$REPEAT"

FERRYD="${FERRYD:-build/ferryd}"
BENCH="${FERRY_HEKA_BENCH:-build/ferry_heka_bench}"
bench_check_bins bench/heka_run.sh "$FERRYD" "$BENCH"

tmp="$(mktemp -d)"
server_pid=""
result=""

stop_server() {
  bench_stop_pid "$server_pid" bench/heka_run.sh
  server_pid=""
}
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  stop_server
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The end marker (Type "bench.end") always goes to the sink through a TcpOutput, so the
# run ends when everything before it has been routed. $3: the output for the messages.
start_ferryd() {
  local port="$1" sink_port="$2" path="$3" conf="$tmp/ferry.toml"
  {
    printf '[ferry]\nlog_level = "warn"\n'
    printf '[in]\ntype = "TcpInput"\naddress = "127.0.0.1:%s"\n' "$port"
    case "$path" in
      heka-\>heka)
        printf '[out]\ntype = "TcpOutput"\nmessage_matcher = "TRUE"\n'
        printf 'address = "127.0.0.1:%s"\n' "$sink_port"
        ;;
      heka-\>null | heka-\>file)
        if [ "$path" = "heka->null" ]; then
          printf '[out]\ntype = "NullOutput"\n'
        else
          printf '[out]\ntype = "FileOutput"\npath = "/dev/null"\n'
        fi
        printf 'message_matcher = "Type != '"'"'bench.end'"'"'"\n'
        printf '[end]\ntype = "TcpOutput"\nmessage_matcher = "Type == '"'"'bench.end'"'"'"\n'
        printf 'address = "127.0.0.1:%s"\n' "$sink_port"
        ;;
    esac
  } >"$conf"
  "$FERRYD" -c "$conf" >>"$tmp/ferryd.log" 2>&1 &
  server_pid=$!
}

# One run; sets `result` to the JSON line, or "" on failure. Where every message reaches
# the sink, the sender keeps within WINDOW_MIB of it: TcpOutput drops the oldest when its
# queue is full instead of slowing the sender, and on 2 CPUs the sink thread can fall
# behind an open-loop sender (see bench/heka_run.sh --help).
measure() {
  local path="$1" size="$2" line="" port sink_port window=0
  if [ "$path" = baseline ] || [ "$path" = "heka->heka" ]; then window="$WINDOW_MIB"; fi
  if [ "$path" = baseline ]; then
    line="$("$BENCH" load --size "$size" --messages "$MESSAGES" --path "$path" \
      --window-mib "$window")" || line=""
  else
    port="$("$BENCH" free-port)"
    sink_port="$("$BENCH" free-port)"
    start_ferryd "$port" "$sink_port" "$path"
    if bench_wait_port "$port" "$server_pid"; then
      line="$("$BENCH" load --port "$port" --sink-port "$sink_port" --size "$size" \
        --messages "$MESSAGES" --pid "$server_pid" --path "$path" --window-mib "$window" \
        --timeout 300)" || line=""
    else
      echo "bench/heka_run.sh: ferryd did not accept connections on 127.0.0.1:$port" >&2
    fi
    stop_server
  fi
  if [ -z "$line" ]; then
    echo "bench/heka_run.sh: $path/$size failed; last lines of ferryd's log:" >&2
    tail -n 5 "$tmp/ferryd.log" >&2 2>/dev/null || true
  elif [ -n "$JSON_OUT" ]; then
    echo "$line" >>"$JSON_OUT"
  fi
  result="$line"
}

echo "ferry heka benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs," \
  "$MESSAGES messages per run, 1 connection, median of $REPEAT runs, window $WINDOW_MIB MiB"
echo "CPU = CPU-seconds of the server (ferryd, all threads; for the baseline the sink" \
  "thread) per 1M messages."
echo
fmt='%-12s %-6s %12s %9s %10s %12s %10s\n'
# shellcheck disable=SC2059  # the format is ours
printf "$fmt" path size messages/s MiB/s CPU-s/1M "CPU-s/1M x" delivered
failed=0
for size in fixed small; do
  base_cpu=""
  for path in baseline "heka->heka" "heka->null" "heka->file"; do
    mps=() mib=() cpu=() delivered=()
    for _ in $(seq "$REPEAT"); do
      measure "$path" "$size"
      [ -n "$result" ] || continue
      mps+=("$(bench_json_field "$result" messages_per_s)")
      mib+=("$(bench_json_field "$result" mib_per_s)")
      cpu+=("$(bench_json_field "$result" server_cpu_clock_s_per_m)")
      delivered+=("$(bench_json_field "$result" delivered)")
    done
    if [ "${#mps[@]}" -ne "$REPEAT" ]; then
      # shellcheck disable=SC2059
      printf "$fmt" "$path" "$size" FAILED - - - -
      failed=1
      continue
    fi
    c="$(bench_median "${cpu[@]}")"
    [ "$path" = baseline ] && base_cpu="$c"
    # The file and null paths deliver only the end marker to the sink.
    d="$(bench_median "${delivered[@]}")"
    [ "$path" = "heka->heka" ] || [ "$path" = baseline ] || d="-"
    awk -v fmt="$fmt" -v p="$path" -v s="$size" -v m="$(bench_median "${mps[@]}")" \
      -v b="$(bench_median "${mib[@]}")" -v c="$c" -v bc="$base_cpu" -v d="$d" 'BEGIN {
        ratio = (bc > 0) ? sprintf("%.1f", c / bc) : "n/a"
        printf fmt, p, s, sprintf("%.0f", m), sprintf("%.1f", b), sprintf("%.4f", c), ratio, d
      }'
  done
done
echo
echo "CPU-s/1M x = ferryd's CPU per message / the counting sink's (how many times the floor)."
echo "delivered  = messages counted at the sink (heka->heka must equal messages: no drops)."
exit "$failed"
