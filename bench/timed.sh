# Timing of decryptors on one file (sourced by bench/decrypt.sh and bench/containers.sh).
# Expects $work (a scratch directory holding `plain`, the plaintext) and $size_mib.
#
#   bench LABEL OUTPUT-NAME COMMAND...
# runs COMMAND three times into a fresh $work/out, checks $work/out/OUTPUT-NAME against
# the plaintext byte for byte, and prints a Markdown row: median wall and CPU seconds,
# MiB/s, the highest peak RSS. A command that fails is a result too (a peer that cannot
# decrypt the file at all): its row says so. Each row's wall time is also appended to
# $work/summary.

median() { sort -n | sed -n 2p; }

bench() {
  local label=$1 out=$2; shift 2
  : > "$work/times"
  for _ in 1 2 3; do
    rm -rf "$work/out"; mkdir -p "$work/out"; sync
    if ! /usr/bin/time -f "%e %U %S %M" -o "$work/t" "$@" >/dev/null 2>"$work/err"; then
      printf '| %s | fails: %s | | | %s |\n' "$label" \
        "$(grep -v '^Command exited' "$work/err" | head -2 | tr '\n|' '  ' | cut -c1-160)" \
        "$(tail -1 "$work/t" | awk '{printf "%.0f", $4 / 1024}')"
      return 0
    fi
    cat "$work/t" >> "$work/times"
    cmp -s "$work/out/$out" "$work/plain" || { echo "$label: output differs" >&2; exit 1; }
  done
  local wall cpu rss
  wall=$(awk '{print $1}' "$work/times" | median)
  cpu=$(awk '{print $2 + $3}' "$work/times" | median)
  rss=$(awk '{print $4}' "$work/times" | sort -n | tail -1)
  printf '| %s | %s | %s | %.0f | %.0f |\n' "$label" "$wall" "$cpu" \
    "$(echo "$size_mib / $wall" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
  echo "$label $wall" >> "$work/summary"
}
