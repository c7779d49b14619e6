#!/usr/bin/env bash
# CMS and AWS Encryption SDK decryption: gcrec against the producers' own decryptors on
# the same files — `openssl cms -decrypt` and the Python SDK (`aws-encryption-sdk`,
# streaming API) — time, CPU and peak memory.
#
#   bench/containers.sh [SIZE_MIB]      (default 2048: the 2 GiB memory check)
#
# Makes SIZE_MIB of random plaintext; encrypts it with `openssl cms -encrypt -stream
# -aes-256-gcm` (indefinite-length DER AuthEnvelopedData, RSA-3072 recipient) and with the
# Python SDK (suite 0x0578: committed, ECDSA P-384 signed; 4 KiB frames, raw AES key);
# then decrypts each three times and checks every output byte for byte. gcrec fsyncs
# its output and holds back nothing unverified; openssl reads the whole message into
# memory first (openssl#26372); the Python SDK's stream releases plaintext before the
# signature is checked.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-2048}
py=target/tools/py/bin/python
[ -x "$py" ] || { echo "run scripts/test first: it builds the Python venv with the ESDK" >&2; exit 1; }
cargo build --release -q -p gcrec
work=$(mktemp -d "${TMPDIR:-/var/tmp}/gcrec-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
head -c $((size_mib << 20)) /dev/urandom > "$work/plain"
openssl cms -encrypt -binary -stream -outform DER -aes-256-gcm -in "$work/plain" \
  -out "$work/msg.cms" keys-example/rsa3072.cert.pem
"$py" bench/esdk_stream.py e "$work/plain" "$work/msg.esdk" keys-example/aes256.key

# shellcheck source=bench/timed.sh
. bench/timed.sh
echo "Input: $size_mib MiB of random data; $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo
echo "| run | wall s (median of 3) | CPU s | MiB/s | peak RSS MiB (max of 3) |"
echo "|---|---|---|---|---|"
bench "gcrec decrypt, CMS AuthEnvelopedData (AES-256-GCM, indefinite length)" msg.cms \
  target/release/gcrec decrypt "$work/msg.cms" --key keys-example/rsa3072.pem --key keys-example/rsa3072.cert.pem --out "$work/out" -q
bench "openssl cms -decrypt, same file" msg.cms \
  openssl cms -decrypt -binary -inform DER -in "$work/msg.cms" -recip keys-example/rsa3072.cert.pem \
  -inkey keys-example/rsa3072.pem -out "$work/out/msg.cms"
bench "gcrec decrypt, ESDK v2 (0x0578: committed, ECDSA P-384; 4 KiB frames)" msg.esdk \
  target/release/gcrec decrypt "$work/msg.esdk" --key keys-example/aes256.key --out "$work/out" -q
bench "Python aws-encryption-sdk 3.3.1 (stream), same file" msg.esdk \
  "$py" bench/esdk_stream.py d "$work/msg.esdk" "$work/out/msg.esdk" keys-example/aes256.key
