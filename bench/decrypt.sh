#!/usr/bin/env bash
# Decryption throughput and peak memory: gcrec against gpg on the same inputs.
#
#   bench/decrypt.sh [SIZE_MIB]        (default 1024; use 2048 for the 2 GiB memory check)
#
# Makes SIZE_MIB of random plaintext, encrypts it with gpg (Curve25519, no compression)
# and as an S3 Encryption Client V3 object (AES-GCM-wrapped key), then times, three times
# each: gcrec decrypt (OpenPGP), gpg --decrypt, gcrec decrypt (S3EC). Reports the median
# wall time, CPU seconds and peak RSS (GNU time), and checks every output byte for byte.
# gcrec also fsyncs its output (durability); gpg does not.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
cargo build --release -q -p gcrec -p gcrec-testkit
work=$(mktemp -d "${TMPDIR:-/var/tmp}/gcrec-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -m 700 "$work/gnupg"
export GNUPGHOME="$work/gnupg"
gpg --batch --quiet --import keys-example/pgp-cv25519.sec.asc keys-example/pgp-cv25519.pub.asc 2>/dev/null
head -c $((size_mib << 20)) /dev/urandom > "$work/plain"
gpg --batch --quiet --trust-model always -z 0 -r cv25519@example.invalid -o "$work/msg.pgp" -e "$work/plain"
target/release/gcrec-testkit encrypt-s3ec --version v3 --aes-key keys-example/aes256.key "$work/plain" "$work/obj.s3ec"

# shellcheck source=bench/timed.sh
. bench/timed.sh
echo "Input: $size_mib MiB of random data; $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo
echo "| run | wall s (median of 3) | CPU s | MiB/s | peak RSS MiB (max of 3) |"
echo "|---|---|---|---|---|"
bench "gcrec decrypt, OpenPGP (Curve25519, SEIPDv1)" msg target/release/gcrec decrypt "$work/msg.pgp" --key keys-example/pgp-cv25519.sec.asc --out "$work/out" -q
bench "gpg --decrypt, same file" msg gpg --batch --quiet --decrypt -o "$work/out/msg" "$work/msg.pgp"
bench "gcrec decrypt, S3EC V3 (AES-GCM)" obj.s3ec target/release/gcrec decrypt "$work/obj.s3ec" --key keys-example/aes256.key --out "$work/out" -q
echo
awk '/^gcrec decrypt, OpenPGP/ {g=$NF} /^gpg/ {p=$NF} END {printf "OpenPGP: gcrec is %.2fx gpg (wall)\n", p / g}' "$work/summary"
