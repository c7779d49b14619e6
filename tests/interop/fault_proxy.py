#!/usr/bin/env python3
"""A fault-injecting HTTP proxy between an S3 client and a local S3 server (moto).

moto does not enforce SSE-C keys, KMS key state or checksums, and never fails on its
own; this proxy answers the way S3's documentation says S3 does, so the client's
handling of each failure can be tested for real.

    fault_proxy.py UPSTREAM_URL

Listens on a free 127.0.0.1 port and prints `PORT n` on stdout. Commands arrive as
JSON lines on stdin; each is answered with one JSON line on stdout:

    {"cmd": "add", "rule": {...}}   add a rule (first matching rule with times left wins)
    {"cmd": "clear"}                remove all rules and the request log
    {"cmd": "log"}                  -> {"log": [{"method", "path", "range", "status", "region"}]}

A rule: {"method": "GET"|"HEAD"|..., "key": "substring of the path", "ranged": bool,
"times": N (omit: always), "action": ..., ...}. Actions:

    status    answer `status` with an S3 error document (`code`, `message`, `headers`)
    reset     forward, send the headers and `fraction` of the body, then reset the TCP
              connection
    truncate  forward, send the headers and `fraction` of the body, then close cleanly
    flip      forward, flipping one byte of the body at `offset`
    replace   forward, then overwrite the object upstream with `body_hex`
    redirect  unless the SigV4 credential scope names `region`, answer 301
              PermanentRedirect with x-amz-bucket-region (S3's answer to the wrong region)
    ssec      unless the request carries the SSE-C key whose MD5 is `md5`, answer as S3
              does: no key 400 InvalidRequest, another key 403 AccessDenied
    hang      accept the request and never answer (for `seconds`, default 3600), as a
              dead peer does
    body      answer `status` (default 200) with the canned `body` text, Content-Length
              matching it (a well-formed HTTP answer whose XML may be anything)
    trickle   forward, then send the body `bytes_per_second` at a time, one per second

A rule may also say `query`: a substring the raw query string must hold.
"""

import http.client
import http.server
import json
import socket
import struct
import sys
import threading
import time
import urllib.parse
import uuid

UPSTREAM = urllib.parse.urlparse(sys.argv[1])
RULES = []
LOG = []
LOCK = threading.Lock()


def error_body(code, message):
    rid = uuid.uuid4().hex[:16].upper()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{rid}</RequestId><HostId>fault-proxy</HostId></Error>"
    ).encode()


def credential_region(headers):
    auth = headers.get("Authorization", "")
    marker = "Credential="
    if marker not in auth:
        return None
    scope = auth.split(marker, 1)[1].split(",", 1)[0].split("/")
    return scope[2] if len(scope) > 2 else None


def take_rule(method, path, ranged, query=""):
    with LOCK:
        for rule in RULES:
            if rule.get("method") and rule["method"] != method:
                continue
            if rule.get("key") and rule["key"] not in path:
                continue
            if rule.get("query") and rule["query"] not in query:
                continue
            if "ranged" in rule and bool(rule["ranged"]) != ranged:
                continue
            times = rule.get("times")
            if times is not None:
                if times <= 0:
                    continue
                rule["times"] = times - 1
            return dict(rule)
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = urllib.parse.unquote(self.path)
        ranged = "Range" in self.headers
        region = credential_region(self.headers)
        query = self.path.split("?", 1)[1] if "?" in self.path else ""
        rule = take_rule(self.command, path, ranged, query)
        entry = {
            "method": self.command,
            "path": path,
            "range": self.headers.get("Range"),
            "region": region,
            "status": None,
        }
        with LOCK:
            LOG.append(entry)
        action = rule["action"] if rule else None

        if action == "hang":
            entry["status"] = "hung"
            time.sleep(float(rule.get("seconds", 3600)))
            self.close_connection = True
            return None
        if action == "body":
            entry["status"] = int(rule.get("status", 200))
            data = rule["body"].encode()
            self.send_response_only(entry["status"])
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            self.wfile.flush()
            self.close_connection = True
            return None
        if action == "status":
            return self.answer_error(entry, rule["status"], rule.get("code", "InternalError"),
                                     rule.get("message", "We encountered an internal error."),
                                     rule.get("headers", {}))
        if action == "redirect" and region != rule["region"]:
            return self.answer_error(entry, 301, "PermanentRedirect",
                                     "The bucket you are attempting to access must be addressed "
                                     "using the specified endpoint.",
                                     {"x-amz-bucket-region": rule["region"]})
        if action == "ssec":
            md5 = self.headers.get("x-amz-server-side-encryption-customer-key-MD5")
            if md5 is None:
                return self.answer_error(entry, 400, "InvalidRequest",
                                         "The object was stored using a form of Server Side "
                                         "Encryption. The correct parameters must be provided to "
                                         "retrieve the object.", {})
            if md5 != rule["md5"]:
                return self.answer_error(entry, 403, "AccessDenied", "Access Denied", {})

        status, headers, data = self.forward(body)
        entry["status"] = status
        cut = None
        if action in ("reset", "truncate") and self.command == "GET" and status < 300:
            cut = int(len(data) * float(rule.get("fraction", 0.5)))
        if action == "flip" and self.command == "GET" and status < 300 and data:
            offset = min(int(rule.get("offset", 0)), len(data) - 1)
            data = data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1:]

        self.send_response_only(status)
        for name, value in headers:
            if name.lower() in ("connection", "transfer-encoding", "content-length", "date", "server"):
                continue
            self.send_header(name, value)
        if action == "ssec" and status < 300:
            # What S3 returns for an SSE-C object read with its key (moto does not).
            self.send_header("x-amz-server-side-encryption-customer-algorithm", "AES256")
            self.send_header("x-amz-server-side-encryption-customer-key-MD5", rule["md5"])
        upstream_length = dict((k.lower(), v) for k, v in headers).get("content-length", "0")
        self.send_header("Content-Length", upstream_length if self.command == "HEAD" else str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and action == "trickle" and status < 300:
            step = max(1, int(rule.get("bytes_per_second", 1)))
            try:
                for i in range(0, len(data), step):
                    self.wfile.write(data[i:i + step])
                    self.wfile.flush()
                    time.sleep(1)
            except OSError:
                pass  # the client gave up on us, as it should
        elif self.command != "HEAD":
            self.wfile.write(data if cut is None else data[:cut])
        self.wfile.flush()
        if cut is not None and action == "reset":
            # SO_LINGER 0: close() sends RST, as a connection reset mid-body does.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        self.close_connection = True
        if action == "replace":
            entry["replaced"] = self.replace(bytes.fromhex(rule["body_hex"]))

    def forward(self, body):
        conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        headers["Host"] = f"{UPSTREAM.hostname}:{UPSTREAM.port}"
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, resp.getheaders(), data

    def replace(self, new_body):
        conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=60)
        path = self.path.split("?", 1)[0]
        # moto wants a SigV4-shaped Authorization header but does not check signatures.
        headers = {
            "Content-Length": str(len(new_body)),
            "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
            "Authorization": "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/s3/aws4_request, "
                             "SignedHeaders=host, Signature=" + "0" * 64,
        }
        conn.request("PUT", path, body=new_body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        conn.close()
        return resp.status

    def answer_error(self, entry, status, code, message, headers):
        entry["status"] = status
        data = b"" if self.command == "HEAD" else error_body(code, message)
        self.send_response_only(status)
        self.send_header("Content-Type", "application/xml")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("x-amz-request-id", uuid.uuid4().hex[:16].upper())
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = handle_any


def control():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        msg = json.loads(line)
        with LOCK:
            if msg["cmd"] == "add":
                RULES.append(msg["rule"])
                reply = {"ok": True}
            elif msg["cmd"] == "clear":
                RULES.clear()
                LOG.clear()
                reply = {"ok": True}
            elif msg["cmd"] == "log":
                reply = {"log": list(LOG)}
            else:
                reply = {"error": f"unknown command {msg['cmd']}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    # stdin closed: the test is over.
    server.shutdown()


# A listen backlog of 5 (socketserver's default) drops the SYNs of a client opening
# dozens of connections at once; the kernel retries them after 1, 3, 7… seconds, which
# turns a burst into a minute-long stall.
http.server.ThreadingHTTPServer.request_queue_size = 256
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(f"PORT {server.server_address[1]}", flush=True)
threading.Thread(target=control, daemon=True).start()
server.serve_forever()
