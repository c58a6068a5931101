#!/usr/bin/env python3
"""A real HTTP webhook receiver for the webhook tests (stdlib http.server on 127.0.0.1).

Usage: webhook_receiver.py DIR [PORT]   (PORT 0 or absent: pick a free one)

Prints the port on the first line of stdout once it accepts connections. Every request (any method,
any path) is written atomically to DIR/<n>.json (n = 1, 2, ... in order of arrival, continuing after
files already there, so a restart on the same directory keeps counting) *before* it is answered:

  number, method, path, headers (names lower-cased), body (text), status (what it answered; null
  when it answered nothing: hang, reset), mode, received_at (the real time, RFC 3339),
  timestamp_header (the webhook-timestamp header as sent), verified {secret: true/false} for each
  secret of DIR/secrets, and verify_errors {secret: why} for those that failed.

Signatures are checked with the Standard Webhooks reference library (`standardwebhooks` on PyPI):
every `whsec_...` line of DIR/secrets (re-read on each request) is tried.

What it answers is read from DIR/mode on each request (missing or empty: accept):
  accept         200 "ok"
  fail           500
  fail:N         500 for the next N requests (counted from when the mode was written), then 200
  gone           410
  redirect       302 to http://127.0.0.1:1/
  ratelimit:S    429 with Retry-After: S
  unavailable:S  503 with Retry-After: S
  hang           no answer for an hour (longer than any client timeout)
  reset          the connection is reset (SO_LINGER 0, then close) without any response
  huge           200 with a 10 MB body, streamed (a client is expected to stop reading)
Stops cleanly on SIGTERM or SIGINT.
"""

import json
import os
import signal
import socket
import struct
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    from standardwebhooks.webhooks import Webhook
except ImportError:
    sys.stderr.write(
        "webhook_receiver.py needs the Standard Webhooks reference library:"
        " python3 -m pip install standardwebhooks\n"
    )
    sys.exit(3)

HOST = "127.0.0.1"
HUGE_BYTES = 10 * 1024 * 1024


class ReferenceWebhook(Webhook):
    """The reference library's verification, with its wall-clock window switched off.

    `Webhook.verify` rejects a `webhook-timestamp` more than 5 minutes away from the *real* time,
    but the gateway under test signs with its test clock (it starts at 2026-11-26 09:00 UTC and the
    tests move it by hours). So this subclass replaces only the library's private timestamp check
    (`Webhook.__verify_timestamp`, name-mangled to `_Webhook__verify_timestamp`) with one that
    parses the header exactly as the library does but accepts any instant; everything else — the
    required headers, the signed content `id.timestamp.body`, the HMAC, the `v1,` entries and the
    constant-time comparison — is the library's own code. Tests compare `timestamp_header` with
    the gateway's clock themselves.
    """

    def _Webhook__verify_timestamp(self, timestamp_header):
        try:
            return datetime.fromtimestamp(float(timestamp_header), tz=timezone.utc)
        except Exception as error:
            raise ValueError(f"unparseable webhook-timestamp {timestamp_header!r}") from error


def now_rfc3339():
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Receiver:
    def __init__(self, directory):
        self.directory = directory
        self.lock = threading.Lock()
        existing = [
            int(name[:-5])
            for name in os.listdir(directory)
            if name.endswith(".json") and name[:-5].isdigit()
        ]
        self.count = max(existing, default=0)
        # fail:N bookkeeping: which writing of the mode file the counter belongs to.
        self.fail_key = None
        self.fail_left = 0

    def mode(self):
        """The mode text and an identity of this writing of the mode file."""
        path = os.path.join(self.directory, "mode")
        try:
            with open(path, encoding="utf-8") as file:
                text = file.read().strip() or "accept"
                stat = os.fstat(file.fileno())
                return text, (text, stat.st_ino, stat.st_mtime_ns)
        except FileNotFoundError:
            return "accept", ("accept", None, None)

    def secrets(self):
        try:
            with open(os.path.join(self.directory, "secrets"), encoding="utf-8") as file:
                return [line.strip() for line in file if line.strip()]
        except FileNotFoundError:
            return []

    def decide(self):
        """(mode text, effective action, argument) for the request now arriving."""
        text, key = self.mode()
        name, _, argument = text.partition(":")
        if name == "fail" and argument:
            with self.lock:
                if key != self.fail_key:
                    self.fail_key = key
                    self.fail_left = int(argument)
                if self.fail_left > 0:
                    self.fail_left -= 1
                    return text, "fail", None
                return text, "accept", None
        return text, name, argument

    def number(self):
        with self.lock:
            self.count += 1
            return self.count

    def store(self, number, record):
        final = os.path.join(self.directory, f"{number}.json")
        temporary = os.path.join(self.directory, f".{number}.json.tmp")
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump(record, file, ensure_ascii=False)
        os.replace(temporary, final)


def verify_all(secrets, body, headers):
    verified, errors = {}, {}
    for secret in secrets:
        try:
            ReferenceWebhook(secret).verify(body, headers, json_parse=False)
            verified[secret] = True
        except Exception as error:  # WebhookVerificationError, bad base64, bad header shape
            verified[secret] = False
            errors[secret] = f"{type(error).__name__}: {error}"
    return verified, errors


class ConnectionReset(Exception):
    """Raised once a connection was reset on purpose."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "webhook-receiver/1"

    def log_message(self, format, *args):  # quiet: the tests read the stored requests
        pass

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def handle_any(self):
        receiver = self.server.receiver
        body = self.read_body()
        mode, action, argument = receiver.decide()
        headers = {}
        for name, value in self.headers.items():
            name = name.lower()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        verified, errors = verify_all(receiver.secrets(), body, headers)

        status, extra, content = {
            "accept": (200, {}, b"ok"),
            "fail": (500, {}, b"receiver failing on purpose"),
            "gone": (410, {}, b"gone"),
            "redirect": (302, {"Location": "http://127.0.0.1:1/"}, b"moved"),
            "ratelimit": (429, {"Retry-After": argument or "0"}, b"slow down"),
            "unavailable": (503, {"Retry-After": argument or "0"}, b"unavailable"),
            "huge": (200, {}, None),
        }.get(action, (None, {}, None))
        if action not in ("hang", "reset") and status is None:
            status, content = 500, f"unknown receiver mode {mode!r}".encode()

        number = receiver.number()
        receiver.store(
            number,
            {
                "number": number,
                "method": self.command,
                "path": self.path,
                "headers": headers,
                "body": body.decode("utf-8", errors="replace"),
                "status": status,
                "mode": mode,
                "received_at": now_rfc3339(),
                "timestamp_header": headers.get("webhook-timestamp"),
                "verified": verified,
                "verify_errors": errors,
            },
        )

        if action == "hang":
            time.sleep(3600)
            self.close_connection = True
            return
        if action == "reset":
            self.reset()
            return
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain")
        if action == "huge":
            self.send_header("Content-Length", str(HUGE_BYTES))
            self.end_headers()
            block = b"x" * 65536
            try:
                for _ in range(HUGE_BYTES // len(block)):
                    self.wfile.write(block)
            except OSError:  # the client stopped reading, as it should
                pass
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def reset(self):
        """Closes the connection with a TCP RST and nothing written."""
        self.close_connection = True
        connection = self.connection
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The file objects hold references on the socket: close them first so that closing the
        # socket really closes it (with linger 0: an RST, not a FIN).
        for stream in (self.wfile, self.rfile):
            try:
                stream.close()
            except OSError:
                pass
        connection.close()
        raise ConnectionReset()  # out of http.server's handler, which would flush the closed file

    do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address, receiver):
        self.receiver = receiver
        super().__init__(address, Handler)

    def handle_error(self, request, client_address):  # a client that went away is not news
        error = sys.exc_info()[1]
        if not isinstance(error, (OSError, ConnectionReset)):
            super().handle_error(request, client_address)


def main():
    if len(sys.argv) not in (2, 3):
        sys.stderr.write(__doc__)
        return 2
    directory = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) == 3 else 0
    os.makedirs(directory, exist_ok=True)

    server = Server((HOST, port), Receiver(directory))
    print(server.server_address[1], flush=True)
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    serving.daemon = True
    serving.start()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
