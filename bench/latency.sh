#!/usr/bin/env bash
# Small objects far away (#16): 1,000 recordings of ~32 KiB in s3s-fs behind a proxy that
# adds DELAY_MS to every request, pulled with --jobs 32, --jobs 128 and --jobs auto
# (median of 3 wall times; plain media, so the time is the requests').
#
#   bench/latency.sh [DELAY_MS]      (default 80)
#
# GCREC_BIN=PATH times another gcrec build (an older commit's, for a regression check);
# JOBS_LIST="32 128 auto" chooses the --jobs settings.
set -euo pipefail
cd "$(dirname "$0")/.."
delay=${1:-80}
# shellcheck source=bench/tools.sh
source bench/tools.sh
cargo build --release -q -p gcrec -p gcrec-testkit
work=$(mktemp -d "${TMPDIR:-/var/tmp}/gcrec-latency.XXXXXX")
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mkdir -p "$work/data/exports"
target/release/gcrec-testkit generate --out "$work/data/exports" --days 21 --per-hour 2 \
  --call-bytes 32768 --screen-bytes 32768 --digital-bytes 32768 --seed 3 2>&1 | tail -1
s3=$(free_port)
"$tools/cargo/bin/s3s-fs" --host 127.0.0.1 --port "$s3" --access-key test --secret-key test "$work/data" >/dev/null 2>&1 &
pids+=($!)
proxy=$(free_port)
python3 bench/latency_proxy.py "$proxy" "$s3" "$delay" &
pids+=($!)
sleep 2
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:$proxy
echo "| --jobs | median wall (3 runs) | jobs at the end (highest), back-offs |"
echo "|---|---|---|"
gcrec=${GCREC_BIN:-target/release/gcrec}
settings=(${JOBS_LIST:-32 128 auto} s5cmd)
# The settings take turns (one run of each, three rounds) so drift falls on all alike;
# outputs stay until the end (ext4 scans past inodes deleted in the last seconds when it
# allocates new ones: deleting 2,000 files before each run made every run slower).
for round in 1 2 3; do
  for jobs in "${settings[@]}"; do
    out="$work/out-$jobs-$round"
    if [ "$jobs" = s5cmd ]; then
      # s5cmd (download only, its default 256 workers), the same objects, the same proxy.
      /usr/bin/time -f "%e" -o "$work/t" "$tools/bench/bin/s5cmd" --endpoint-url "$AWS_ENDPOINT_URL" \
        cp 's3://exports/*' "$out/" >/dev/null
    else
      /usr/bin/time -f "%e" -o "$work/t" "$gcrec" pull s3://exports --out "$out" --jobs "$jobs" -q
    fi
    cat "$work/t" >> "$work/times-$jobs"
  done
done
for jobs in "${settings[@]}"; do
  wall=$(sort -n "$work/times-$jobs" | sed -n 2p)
  if [ "$jobs" = s5cmd ]; then
    echo "| s5cmd cp (download only, default settings) | ${wall} s | - |"
    continue
  fi
  adapt=$(tail -1 "$work/out-$jobs-3/gcrec-manifest.jsonl" | python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"]
print("{} ({}), {}".format(j["last"], j["highest"], j["backoffs"]) if j["auto"] else "-")')
  echo "| $jobs | ${wall} s | $adapt |"
done
n=$(grep -c '"type":"recording"' "$work/out-${settings[0]}-1/gcrec-manifest.jsonl")
echo "($n recordings, ${delay} ms a request)"
