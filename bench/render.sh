#!/usr/bin/env bash
# WAV renditions: what `--render wav` adds to a production, against `opusdec` (the
# reference decoder, opus-tools) decoding the same files one by one.
#
#   bench/render.sh [CALLS]      (default 48 calls of 10 minutes: 8 hours of audio)
#
# Encodes ten minutes of pink noise (sox) with opusenc at 32 kbit/s, generates an export
# (gcrec-testkit) and puts that Opus file in place of every call's audio; then writes a
# production of it three times without renditions and three times with, and decodes
# every call with `opusdec --rate 48000 --no-dither` three times. Prints medians.
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-48}
for t in sox opusenc opusdec; do
  command -v "$t" >/dev/null || { echo "$t is needed (apt-get install sox opus-tools)" >&2; exit 1; }
done
cargo build --release -q -p gcrec -p gcrec-testkit
work=$(mktemp -d "${TMPDIR:-/var/tmp}/gcrec-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
sox -n -r 16000 -c 1 -b 16 "$work/src.wav" synth 600 pinknoise vol 0.3
opusenc --quiet --bitrate 32 "$work/src.wav" "$work/src.opus"
target/release/gcrec-testkit generate --out "$work/export" --days 2 --per-hour 2 >/dev/null
mapfile -t natives < <(find "$work/export" -name '*.opus' | sort | head -n "$calls")
[ "${#natives[@]}" -eq "$calls" ] || { echo "the export has only ${#natives[@]} calls" >&2; exit 1; }
for f in "${natives[@]}"; do cp "$work/src.opus" "$f"; done
opus_bytes=$(( $(stat -c %s "$work/src.opus") * calls ))

median() { sort -n | sed -n 2p; }
run3() { # LABEL COMMAND... ; prints "wall cpu" medians
  : > "$work/times"
  for i in 1 2 3; do
    rm -rf "$work/prod" "$work/dec"; mkdir -p "$work/dec"; sync
    /usr/bin/time -f "%e %U %S %M" -o "$work/t" "$@" >/dev/null 2>&1 || { echo "$1 failed" >&2; exit 1; }
    cat "$work/t" >> "$work/times"
  done
  echo "$(awk '{print $1}' "$work/times" | median) $(awk '{print $2 + $3}' "$work/times" | median) $(awk '{print $4}' "$work/times" | sort -n | tail -1)"
}
produce=(target/release/gcrec pull "$work/export" --production "$work/prod" --matter bench --prefix B -q)
i=0
for f in "${natives[@]}"; do
  i=$((i + 1)); echo "opusdec --quiet --rate 48000 --no-dither '$f' '$work/dec/$i.wav'"
done > "$work/decode.sh"
read -r w0 c0 r0 < <(run3 "${produce[@]}")
read -r w1 c1 r1 < <(run3 "${produce[@]}" --render wav)
wav_bytes=$(du -cb "$work"/prod/VOL001/RENDITIONS/*/*.wav | tail -1 | cut -f1)
read -r w2 c2 _ < <(run3 bash "$work/decode.sh")
gib=$(echo "$opus_bytes / 1073741824" | bc -l)
hours=$(echo "$calls * 600 / 3600" | bc -l)
echo "Input: $calls calls of 10 minutes (${hours%.*} hours of audio), Opus 32 kbit/s mono 16 kHz: $((opus_bytes >> 20)) MiB of natives, $((wav_bytes >> 20)) MiB of WAV; $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo
echo "| run | wall s (median of 3) | CPU s | CPU s per GiB of Opus | CPU s per hour of audio | peak RSS MiB |"
echo "|---|---|---|---|---|---|"
row() { printf '| %s | %s | %s | %.0f | %.2f | %s |\n' "$1" "$2" "$3" "$(echo "$3 / $gib" | bc -l)" "$(echo "$3 / $hours" | bc -l)" "$4"; }
row "gcrec production, natives only" "$w0" "$c0" "$((r0 / 1024))"
row "gcrec production, --render wav" "$w1" "$c1" "$((r1 / 1024))"
row "rendition alone (difference)" "$(echo "$w1 - $w0" | bc)" "$(echo "$c1 - $c0" | bc)" "-"
row "opusdec --rate 48000 --no-dither, file by file" "$w2" "$c2" "-"
