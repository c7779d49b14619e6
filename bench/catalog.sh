#!/usr/bin/env bash
# The catalog (#13) and the inventory listing (#14) at scale.
#
#   bench/catalog.sh [WORK_DIR]     (default /var/tmp/gcrec-catalog-bench; needs ~20 GB)
#
# 1. Generates a local export of ~1,000,000 recordings (320 days x 120 conversations an
#    hour, tiny media), indexes it (wall time, peak RSS, catalog bytes per recording),
#    re-indexes it unchanged, then times filter queries on the catalog (median of 10) and
#    the time from the start of `pull --catalog` of ~10,000 matches to its first finished
#    recording.
# 2. Generates a 10,000,000-row CSV S3 Inventory report and times `ls --inventory
#    --count` over it (rows per second, peak RSS).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/var/tmp/gcrec-catalog-bench}
cargo build --release -q -p gcrec -p gcrec-testkit
g=$PWD/target/release/gcrec
t=$PWD/target/release/gcrec-testkit
mkdir -p "$work"
timed() { /usr/bin/time -f "%e s, peak RSS %M KB" "$@"; }

if [ ! -d "$work/src" ]; then
  timed "$t" generate --out "$work/src" --days 320 --per-hour 120 --seed 13 \
    --call-bytes 64 --screen-bytes 64 --digital-bytes 64
fi
# KEEP_CATALOG=1 reuses the catalog of an earlier run (the queries and the rest only).
if [ -z "${KEEP_CATALOG:-}" ]; then
  rm -f "$work/c.sqlite"*
  echo "index (first run):"; timed "$g" index "$work/src" --catalog "$work/c.sqlite"
  echo "index (again, unchanged):"; timed "$g" index "$work/src" --catalog "$work/c.sqlite"
else
  "$g" index "$work/src" --catalog "$work/c.sqlite" -q   # migrates an older catalog
fi
n=$("$g" ls --catalog "$work/c.sqlite" --count -q)
bytes=$(stat -c %s "$work/c.sqlite")
echo "catalog: $bytes bytes, $n recordings, $((bytes / n)) bytes a recording"

c=$work/c.sqlite
ani=$(python3 -c "import sqlite3; print(sqlite3.connect('file:$c?mode=ro', uri=True).execute(\"select ani_normalized from recordings where ani_normalized is not null limit 1 offset 5000\").fetchone()[0])")
conv=$(python3 -c "import sqlite3; print(sqlite3.connect('file:$c?mode=ro', uri=True).execute('select conversation_id from recordings limit 1 offset 77777').fetchone()[0])")
user=5d2c7a10-0000-4000-8000-000000000003
queue=9a0b1c2d-0000-4000-8000-00000000000b
code=e1e1e1e1-0000-4000-8000-000000000103
query() {
  local label=$1; shift
  python3 - "$label" "$@" <<'PY'
import statistics, subprocess, sys, time
label, cmd = sys.argv[1], sys.argv[2:]
times, out = [], ""
for _ in range(10):
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    times.append((time.perf_counter() - t0) * 1000)
lines = out.strip().splitlines()
answer = lines[0] if len(lines) == 1 else f"{len(lines) - 1} rows"
print(f"| {label} | {answer} | {statistics.median(times):.0f} ms |")
PY
}
echo "| query | answer | median of 10 |"
echo "|---|---|---|"
query "ANI in a month (--count)" "$g" ls --catalog "$c" -q --count --ani "$ani" --from 2024-03 --to 2024-03
query "ANI in a month (table)" "$g" ls --catalog "$c" -q --ani "$ani" --from 2024-03 --to 2024-03
query "a conversation (table)" "$g" ls --catalog "$c" -q --conversation "$conv"
query "an hour (table)" "$g" ls --catalog "$c" -q --from 2024-06-01T10:00 --to 2024-06-01T11:00
query "a user (--count)" "$g" ls --catalog "$c" -q --count --user "$user"
query "a queue + wrap-up code (--count)" "$g" ls --catalog "$c" -q --count --queue "$queue" --wrapup-code "$code"
query "calls over 10 min in a month (--count)" "$g" ls --catalog "$c" -q --count --media-type call --min-duration 10m --from 2024-05 --to 2024-05
query "a user in an hour (table)" "$g" ls --catalog "$c" -q --user "$user" --from 2024-06-01T10:00 --to 2024-06-01T11:00

echo "pull --catalog of ~10,000 matches: time to the first finished recording"
rm -rf "$work/out"
python3 - "$g" "$c" "$work/out" <<'PY'
import subprocess, sys, time
g, c, out = sys.argv[1:]
t0 = time.perf_counter()
p = subprocess.Popen([g, "pull", "--catalog", c, "--from", "2024-03-01", "--to", "2024-03-04T04:00", "--out", out, "--json", "-q"], stdout=subprocess.PIPE, text=True)
first = None
n = 0
for line in p.stdout:
    if '"type":"recording"' in line:
        n += 1
        if first is None:
            first = time.perf_counter() - t0
p.wait()
print(f"first recording after {first * 1000:.0f} ms; {n} recordings in {time.perf_counter() - t0:.1f} s")
PY

echo "ls --inventory --count over 10,000,000 rows:"
if [ ! -d "$work/inventory" ]; then
  "$t" inventory-report --out "$work/inventory" --rows 10000000 --files 32 > "$work/inventory-manifest"
fi
m=$(cat "$work/inventory-manifest")
start=$(date +%s.%N)
timed "$g" ls "$work/src" --inventory "$m" --count -q
end=$(date +%s.%N)
python3 -c "print(f'{10_000_000 / ($end - $start):,.0f} rows/s')"
