#!/usr/bin/env bash
# Spool benchmark: ferry_bench load -> ferryd (ForwardInput -> ForwardOutput) -> ferry_bench
# sink, with the output's buffer in memory (the baseline, in the same run) and as a disk
# spool (`[out.buffer] type = "file"`) with sync = "interval" and sync = "always". Prints
# end-to-end events/s, ferryd's CPU-seconds per million events and the MB ferryd wrote to
# storage per million events (/proc/PID/io write_bytes; the spool deletes delivered
# segments, so the directory's size says nothing). Builds nothing: expects build/ferryd and
# build/ferry_bench (FERRYD=, FERRY_BENCH= override them). SPOOL_BASE= puts the spools
# somewhere else than a fresh directory under $TMPDIR (it must be a real disk: on tmpfs
# write_bytes stays 0 and fdatasync costs nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

usage() {
  cat <<'EOF'
usage: bench/spool_run.sh [--events N] [--repeat R] [--json FILE]
  --events N   events per run (default 2000000)
  --repeat R   runs per path; the table shows medians (default 3)
  --json FILE  also append one JSON line per run to FILE
EOF
}

EVENTS=2000000
REPEAT=3
JSON_OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --events) EVENTS="${2:-}"; shift 2 ;;
    --repeat) REPEAT="${2:-}"; shift 2 ;;
    --json) JSON_OUT="${2:-}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "spool_run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
bench_check_counts spool_run.sh "$EVENTS" "$REPEAT"

FERRYD="${FERRYD:-build/ferryd}"
BENCH="${FERRY_BENCH:-build/ferry_bench}"
bench_check_bins spool_run.sh "$FERRYD" "$BENCH"

tmp="$(mktemp -d)"
spool_base="${SPOOL_BASE:-$tmp}"
ferryd_pid=""
sink_pid=""
fs_type="$(stat -f -c %T "$spool_base")"
if [ "$fs_type" = tmpfs ] || [ "$fs_type" = ramfs ]; then
  echo "spool_run.sh: warning: $spool_base is on $fs_type: write_bytes will read 0 and" \
    "fdatasync is free; set SPOOL_BASE to a directory on a disk" >&2
fi

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  bench_stop_pid "$ferryd_pid"
  bench_stop_pid "$sink_pid"
  rm -rf "$tmp"
  [ -z "${SPOOL_BASE:-}" ] || rm -rf "$spool_base"/ferry-spool-bench.*
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# $1 port, $2 sink port, $3 buffer: memory | interval | always, $4 spool directory
start_ferryd() {
  local port="$1" sink_port="$2" buffer="$3" dir="$4" conf="$tmp/ferry.toml"
  {
    printf '[ferry]\nlog_level = "info"\n'
    printf '[in]\ntype = "ForwardInput"\naddress = "127.0.0.1:%s"\nmax_connections = 64\n' "$port"
    printf '[out]\ntype = "ForwardOutput"\nmatch = "**"\n'
    printf 'servers = [{host = "127.0.0.1", port = %s}]\n' "$sink_port"
    printf 'require_ack_response = true\n'
    # The last, partial chunk of a run waits at most this long (default 1 s).
    printf 'flush_interval = "50ms"\n'
    if [ "$buffer" != memory ]; then
      printf '[out.buffer]\ntype = "file"\nsync = "%s"\npath = "%s"\n' "$buffer" "$dir"
    fi
  } >"$tmp/ferryd.toml.$buffer"
  cp "$tmp/ferryd.toml.$buffer" "$conf"
  : >"$tmp/ferryd.log"
  # The log goes through a pipe so that its lines (a stats report every 50 ms while
  # waiting) do not count in ferryd's write_bytes.
  "$FERRYD" -c "$conf" > >(cat >>"$tmp/ferryd.log") 2>&1 &
  ferryd_pid=$!
}

# One run; sets `result` to "events_per_s cpu_s_per_m write_mb_per_m" or "" on failure.
measure() {
  local label="$1" mode="$2" buffer="$3"
  local port sink_port line cpu0 cpu1 t0 t1 wb0 wb1 wc0 wc1 cw0 cw1 dir r_eps r_cpu r_mb
  result=""
  port="$("$BENCH" free-port)"
  sink_port="$("$BENCH" free-port)"
  dir="$(mktemp -d "$spool_base/ferry-spool-bench.XXXXXX")"
  "$BENCH" sink --port "$sink_port" >/dev/null 2>"$tmp/sink.log" &
  sink_pid=$!
  bench_wait_port "$sink_port" "$sink_pid" || { echo "sink did not start" >&2; return; }
  start_ferryd "$port" "$sink_port" "$buffer" "$dir/spool"
  if ! bench_wait_port "$port" "$ferryd_pid"; then
    echo "spool_run.sh: ferryd did not start:" >&2
    tail -n 5 "$tmp/ferryd.log" >&2
    bench_stop_pid "$sink_pid"; sink_pid=""
    rm -rf "$dir"
    return
  fi
  cpu0="$(bench_cpu_ticks "$ferryd_pid")"
  wb0="$(bench_proc_io "$ferryd_pid" write_bytes)"
  wc0="$(bench_proc_io "$ferryd_pid" wchar)"
  cw0="$(bench_proc_io "$ferryd_pid" cancelled_write_bytes)"
  t0="$(bench_now)"
  line="$("$BENCH" load --port "$port" --mode "$mode" --events "$EVENTS" --batch 1000 --ack \
    --window 64 --timeout 300)" || line=""
  if [ -n "$line" ]; then
    bench_wait_delivered "$ferryd_pid" "$tmp/ferryd.log" "$EVENTS" spool_run.sh || line=""
  fi
  t1="$(bench_now)"
  cpu1="$(bench_cpu_ticks "$ferryd_pid")"
  wb1="$(bench_proc_io "$ferryd_pid" write_bytes)"
  wc1="$(bench_proc_io "$ferryd_pid" wchar)"
  cw1="$(bench_proc_io "$ferryd_pid" cancelled_write_bytes)"
  bench_stop_pid "$ferryd_pid"; ferryd_pid=""
  bench_stop_pid "$sink_pid"; sink_pid=""
  rm -rf "$dir"
  if [ -z "$line" ]; then
    echo "spool_run.sh: $label failed; last lines of ferryd's log:" >&2
    grep -v "stats {" "$tmp/ferryd.log" | tail -n 5 >&2 || true
    return
  fi
  result="$(bench_per_s "$EVENTS" "$t0" "$t1") $(bench_cpu_s_per_m "$cpu0" "$cpu1" "$EVENTS")"
  result+=" $(awk -v n="$EVENTS" -v w0="$wb0" -v w1="$wb1" 'BEGIN {
    printf "%.2f", (w1 - w0) / 1e6 / n * 1e6 }')"
  if [ -n "$JSON_OUT" ]; then
    read -r r_eps r_cpu r_mb <<<"$result"
    {
      printf '{"path":"%s","mode":"%s","buffer":"%s","events":%s,' \
        "$label" "$mode" "$buffer" "$EVENTS"
      printf '"wall_s":%s,"events_per_s":%s,"ferryd_cpu_s_per_m_events":%s,' \
        "$(bench_elapsed "$t0" "$t1")" "$r_eps" "$r_cpu"
      printf '"write_bytes":%s,"wchar":%s,"cancelled_write_bytes":%s,' \
        "$((wb1 - wb0))" "$((wc1 - wc0))" "$((cw1 - cw0))"
      printf '"write_mb_per_m_events":%s,"load":%s}\n' "$r_mb" "$line"
    } >>"$JSON_OUT"
  fi
}

# label|input mode|buffer
paths=(
  "forward -> FO memory|forward|memory"
  "forward -> FO spool interval|forward|interval"
  "forward -> FO spool always|forward|always"
  "packed -> FO memory|packed|memory"
  "packed -> FO spool interval|packed|interval"
  "packed -> FO spool always|packed|always"
)

echo "ferry spool benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs," \
  "$EVENTS events per run (1000 per request, acks to the load on, window 64," \
  "require_ack_response = true), median of $REPEAT; spools on $fs_type"
echo "events/s: first byte sent to the last event acked by the sink. CPU: ferryd's"
echo "CPU-seconds per 1M events. write MB: ferryd's /proc/PID/io write_bytes per 1M events."
echo
fmt='%-30s %12s %10s %8s %12s\n'
# shellcheck disable=SC2059  # the format is ours
printf "$fmt" path events/s CPU-s/1M "CPU x" "write MB/1M"
failed=0
base_cpu=""
for p in "${paths[@]}"; do
  IFS='|' read -r label mode buffer <<<"$p"
  eps=() cpu=() mb=()
  for _ in $(seq "$REPEAT"); do
    measure "$label" "$mode" "$buffer"
    [ -n "$result" ] || continue
    read -r e c w <<<"$result"
    eps+=("$e")
    cpu+=("$c")
    mb+=("$w")
  done
  if [ "${#eps[@]}" -ne "$REPEAT" ]; then
    # shellcheck disable=SC2059
    printf "$fmt" "$label" FAILED - - -
    failed=1
    continue
  fi
  m_eps="$(bench_median "${eps[@]}")"
  m_cpu="$(bench_median "${cpu[@]}")"
  m_mb="$(bench_median "${mb[@]}")"
  if [ "$buffer" = memory ]; then base_cpu="$m_cpu"; fi
  ratio="$(bench_ratio "$m_cpu" "$base_cpu")"
  # shellcheck disable=SC2059
  printf "$fmt" "$label" "$(printf '%.0f' "$m_eps")" "$m_cpu" "$ratio" "$m_mb"
done
echo
echo "CPU x = this path's ferryd CPU per event / the same input's memory-buffer path."
exit "$failed"
