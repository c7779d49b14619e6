#!/usr/bin/env bash
# Small objects far away (#16): 1,000 recordings of ~32 KiB in s3s-fs behind a proxy that
# adds DELAY_MS to every request, pulled with --jobs 32, --jobs 128 and --jobs auto
# (the median of 3 rounds by wall time, with that round's CPU seconds of the tool, the
# server and the proxy; plain media, so the time is the requests').
#
#   bench/latency.sh [DELAY_MS]      (default 80)
#
# GCREC_BIN=PATH times another gcrec build (an older commit's, for a regression check);
# JOBS_LIST="32 128 auto" chooses the --jobs settings. The proxy is `gcrec-testkit
# latency-proxy` (Rust); passes before 2026-12-03 used an asyncio one that cost the shared
# cores 2–3 times as much CPU (docs/BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
delay=${1:-80}
# shellcheck source=bench/tools.sh
source bench/tools.sh
cargo build --release -q -p gcrec -p gcrec-testkit
work=$(mktemp -d "${TMPDIR:-/var/tmp}/gcrec-latency.XXXXXX")
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT
# CPU seconds a process has used so far (user + system, from /proc).
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mkdir -p "$work/data/exports"
target/release/gcrec-testkit generate --out "$work/data/exports" --days 21 --per-hour 2 \
  --call-bytes 32768 --screen-bytes 32768 --digital-bytes 32768 --seed 3 2>&1 | tail -1
s3=$(free_port)
"$tools/cargo/bin/s3s-fs" --host 127.0.0.1 --port "$s3" --access-key test --secret-key test "$work/data" >/dev/null 2>&1 &
pids+=($!)
server_pid=$!
proxy=$(free_port)
target/release/gcrec-testkit latency-proxy --listen "$proxy" --upstream "$s3" --delay-ms "$delay" &
pids+=($!)
proxy_pid=$!
sleep 2
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:$proxy
echo "| --jobs | median wall (3 runs) | its CPU s | server CPU s | proxy CPU s | jobs at the end (highest), back-offs |"
echo "|---|---|---|---|---|---|"
gcrec=${GCREC_BIN:-target/release/gcrec}
settings=(${JOBS_LIST:-32 128 auto} s5cmd)
# The settings take turns (one run of each, three rounds) so drift falls on all alike;
# outputs stay until the end (ext4 scans past inodes deleted in the last seconds when it
# allocates new ones: deleting 2,000 files before each run made every run slower).
for round in 1 2 3; do
  for jobs in "${settings[@]}"; do
    out="$work/out-$jobs-$round"
    server_before=$(cpu_of "$server_pid") proxy_before=$(cpu_of "$proxy_pid")
    if [ "$jobs" = s5cmd ]; then
      # s5cmd (download only, its default 256 workers), the same objects, the same proxy.
      /usr/bin/time -f "%e %U %S" -o "$work/t" "$tools/bench/bin/s5cmd" --endpoint-url "$AWS_ENDPOINT_URL" \
        cp 's3://exports/*' "$out/" >/dev/null
    else
      /usr/bin/time -f "%e %U %S" -o "$work/t" "$gcrec" pull s3://exports --out "$out" --jobs "$jobs" -q
    fi
    # wall, the tool's CPU, the server's and the proxy's during the run
    read -r wall user sys < "$work/t"
    awk -v w="$wall" -v u="$user" -v s="$sys" -v s0="$server_before" -v s1="$(cpu_of "$server_pid")" \
      -v p0="$proxy_before" -v p1="$(cpu_of "$proxy_pid")" \
      'BEGIN { printf "%s %.2f %.2f %.2f\n", w, u + s, s1 - s0, p1 - p0 }' >> "$work/times-$jobs"
  done
done
for jobs in "${settings[@]}"; do
  # the median round by wall time, and its CPU figures
  read -r wall cpu server proxy_cpu < <(sort -n "$work/times-$jobs" | sed -n 2p)
  if [ "$jobs" = s5cmd ]; then
    echo "| s5cmd cp (download only, default settings) | ${wall} s | $cpu | $server | $proxy_cpu | - |"
    continue
  fi
  adapt=$(tail -1 "$work/out-$jobs-3/gcrec-manifest.jsonl" | python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"]
print("{} ({}), {}".format(j["last"], j["highest"], j["backoffs"]) if j["auto"] else "-")')
  echo "| $jobs | ${wall} s | $cpu | $server | $proxy_cpu | $adapt |"
done
n=$(grep -c '"type":"recording"' "$work/out-${settings[0]}-1/gcrec-manifest.jsonl")
echo "($n recordings, ${delay} ms a request)"
