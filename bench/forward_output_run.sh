#!/usr/bin/env bash
# ForwardOutput benchmark: ferry_bench load -> ferryd (ForwardInput -> ForwardOutput) ->
# ferry_bench sink, per path (acks on/off, gzip on/off, Forward/PackedForward input), with
# ForwardInput -> NullOutput in the same run as the baseline. Prints end-to-end events/s
# and ferryd's CPU-seconds per million events. Builds nothing: expects build/ferryd and
# build/ferry_bench (FERRYD=, FERRY_BENCH= override them).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

usage() {
  cat <<'EOF'
usage: bench/forward_output_run.sh [--events N] [--repeat R] [--json FILE]
  --events N   events per run (default 5000000)
  --repeat R   runs per path; the table shows medians (default 3)
  --json FILE  also append one JSON line per run to FILE
EOF
}

EVENTS=5000000
REPEAT=3
JSON_OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --events) EVENTS="${2:-}"; shift 2 ;;
    --repeat) REPEAT="${2:-}"; shift 2 ;;
    --json) JSON_OUT="${2:-}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "forward_output_run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
bench_check_counts forward_output_run.sh "$EVENTS" "$REPEAT"

FERRYD="${FERRYD:-build/ferryd}"
BENCH="${FERRY_BENCH:-build/ferry_bench}"
bench_check_bins forward_output_run.sh "$FERRYD" "$BENCH"

tmp="$(mktemp -d)"
ferryd_pid=""
sink_pid=""

stop_pid() { bench_stop_pid "$1" forward_output_run.sh; }
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  stop_pid "$ferryd_pid"
  stop_pid "$sink_pid"
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# $1 output: null | forward-output; $2 require_ack_response; $3 compress
start_ferryd() {
  local port="$1" output="$2" ack="$3" compress="$4" sink_port="$5" conf="$tmp/ferry.toml"
  {
    printf '[ferry]\nlog_level = "info"\n'
    printf '[in]\ntype = "ForwardInput"\naddress = "127.0.0.1:%s"\nmax_connections = 64\n' "$port"
    if [ "$output" = null ]; then
      printf '[out]\ntype = "NullOutput"\nmatch = "**"\n'
    else
      printf '[out]\ntype = "ForwardOutput"\nmatch = "**"\n'
      printf 'servers = [{host = "127.0.0.1", port = %s}]\n' "$sink_port"
      printf 'require_ack_response = %s\ncompress = "%s"\n' "$ack" "$compress"
      # The last, partial chunk of a run waits at most this long (default 1 s).
      printf 'flush_interval = "50ms"\n'
    fi
  } >"$conf"
  : >"$tmp/ferryd.log"
  "$FERRYD" -c "$conf" >>"$tmp/ferryd.log" 2>&1 &
  ferryd_pid=$!
}

# One run; sets `result` to "events_per_s cpu_s_per_m sink_requests" or "" on failure.
measure() {
  local label="$1" mode="$2" output="$3" ack="$4" compress="$5"
  local port sink_port="" line cpu0 cpu1 t0 t1 requests="-" r_eps r_cpu r_req
  result=""
  port="$("$BENCH" free-port)"
  if [ "$output" != null ]; then
    sink_port="$("$BENCH" free-port)"
    "$BENCH" sink --port "$sink_port" >/dev/null 2>"$tmp/sink.log" &
    sink_pid=$!
    bench_wait_port "$sink_port" "$sink_pid" || { echo "sink did not start" >&2; return; }
  fi
  start_ferryd "$port" "$output" "$ack" "$compress" "$sink_port"
  if ! bench_wait_port "$port" "$ferryd_pid"; then
    echo "forward_output_run.sh: ferryd did not start:" >&2
    tail -n 5 "$tmp/ferryd.log" >&2
    stop_pid "$sink_pid"; sink_pid=""
    return
  fi
  cpu0="$(bench_cpu_ticks "$ferryd_pid")"
  t0="$(bench_now)"
  line="$("$BENCH" load --port "$port" --mode "$mode" --events "$EVENTS" --batch 1000 --ack \
    --window 64 --timeout 300)" || line=""
  if [ -n "$line" ] && [ "$output" != null ]; then
    bench_wait_delivered "$ferryd_pid" "$tmp/ferryd.log" "$EVENTS" forward_output_run.sh ||
      line=""
  fi
  t1="$(bench_now)"
  cpu1="$(bench_cpu_ticks "$ferryd_pid")"
  stop_pid "$ferryd_pid"; ferryd_pid=""
  if [ -n "$sink_pid" ]; then
    stop_pid "$sink_pid"; sink_pid=""
    requests="$(sed -n 's/.* connections, \([0-9]*\) requests.*/\1/p' "$tmp/sink.log")"
  fi
  if [ -z "$line" ]; then
    echo "forward_output_run.sh: $label failed; last lines of ferryd's log:" >&2
    grep -v "stats {" "$tmp/ferryd.log" | tail -n 5 >&2 || true
    return
  fi
  result="$(bench_per_s "$EVENTS" "$t0" "$t1") $(bench_cpu_s_per_m "$cpu0" "$cpu1" "$EVENTS")"
  result+=" $requests"
  if [ -n "$JSON_OUT" ]; then
    read -r r_eps r_cpu r_req <<<"$result"
    {
      printf '{"path":"%s","mode":"%s","output":"%s","ack":"%s","compress":"%s","events":%s,' \
        "$label" "$mode" "$output" "$ack" "$compress" "$EVENTS"
      printf '"wall_s":%s,"events_per_s":%s,"ferryd_cpu_s_per_m_events":%s,' \
        "$(bench_elapsed "$t0" "$t1")" "$r_eps" "$r_cpu"
      printf '"sink_requests":"%s","load":%s}\n' "$r_req" "$line"
    } >>"$JSON_OUT"
  fi
}

# label|input mode|output|require_ack_response|compress
paths=(
  "forward -> NullOutput|forward|null|-|-"
  "forward -> FO ack|forward|forward-output|true|text"
  "forward -> FO ack gzip|forward|forward-output|true|gzip"
  "forward -> FO no-ack|forward|forward-output|false|text"
  "forward -> FO no-ack gzip|forward|forward-output|false|gzip"
  "packed -> NullOutput|packed|null|-|-"
  "packed -> FO ack|packed|forward-output|true|text"
  "packed -> FO ack gzip|packed|forward-output|true|gzip"
  "packed -> FO no-ack|packed|forward-output|false|text"
  "packed -> FO no-ack gzip|packed|forward-output|false|gzip"
)

echo "ferry ForwardOutput benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs," \
  "$EVENTS events per run (1000 per request, acks to the load on, window 64), median of" \
  "$REPEAT"
echo "events/s: first byte sent to the last event delivered to the sink (acked by it, or"
echo "written when require_ack_response = false). CPU: ferryd's CPU-seconds per 1M events."
echo
fmt='%-26s %12s %10s %8s %10s\n'
# shellcheck disable=SC2059  # the format is ours
printf "$fmt" path events/s CPU-s/1M "CPU x" requests
failed=0
base_cpu=""
for p in "${paths[@]}"; do
  IFS='|' read -r label mode output ack compress <<<"$p"
  eps=() cpu=() req=""
  for _ in $(seq "$REPEAT"); do
    measure "$label" "$mode" "$output" "$ack" "$compress"
    [ -n "$result" ] || continue
    read -r e c r <<<"$result"
    eps+=("$e")
    cpu+=("$c")
    req="$r"
  done
  if [ "${#eps[@]}" -ne "$REPEAT" ]; then
    # shellcheck disable=SC2059
    printf "$fmt" "$label" FAILED - - -
    failed=1
    continue
  fi
  m_eps="$(bench_median "${eps[@]}")"
  m_cpu="$(bench_median "${cpu[@]}")"
  if [ "$output" = null ]; then base_cpu="$m_cpu"; fi
  ratio="$(bench_ratio "$m_cpu" "$base_cpu")"
  # shellcheck disable=SC2059
  printf "$fmt" "$label" "$(printf '%.0f' "$m_eps")" "$m_cpu" "$ratio" "$req"
done
echo
echo "CPU x = this path's ferryd CPU per event / the same input's NullOutput baseline."
echo "requests = PackedForward requests the sink received in the last run (chunks)."
exit "$failed"
