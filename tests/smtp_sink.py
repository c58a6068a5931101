#!/usr/bin/env python3
"""A real SMTP server for the email tests (aiosmtpd on 127.0.0.1).

Usage: smtp_sink.py DIR [PORT]   (PORT 0 or absent: pick a free one)

Prints the port on the first line of stdout once it accepts connections. Each accepted message is
written atomically to DIR/<n>.json (n = 1, 2, ... continuing after files already there, so a
restart on the same directory keeps counting). What happens at DATA is read from DIR/mode on each
message (missing: accept):
  accept    250, message stored
  tempfail  451 (transient)
  permfail  550 (permanent)
  hang      no answer for an hour (longer than any client timeout)
Stops cleanly on SIGTERM or SIGINT.

With SMTP_SINK_HEADERS_ONLY=1 (the load generator's setting) only the headers are parsed and stored
(no text/html/raw), so the sink's own Python work does not bound what a benchmark measures.
"""

import asyncio
import email
import email.parser
import email.policy
import json
import os
import signal
import socket
import sys
import threading

try:
    from aiosmtpd.controller import Controller
except ImportError:
    sys.stderr.write(
        "smtp_sink.py needs aiosmtpd: python3 -m pip install aiosmtpd"
        " (Debian: apt-get install python3-aiosmtpd)\n"
    )
    sys.exit(3)

HOST = "127.0.0.1"
HEADERS_ONLY = os.environ.get("SMTP_SINK_HEADERS_ONLY") == "1"


def free_port():
    # aiosmtpd's Controller checks its own port after starting, so port 0 cannot be passed through.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def part_text(message, subtype):
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_type() != "text/" + subtype:
        return None
    return part.get_content().replace("\r\n", "\n")


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.lock = threading.Lock()
        existing = [
            int(name[:-5])
            for name in os.listdir(directory)
            if name.endswith(".json") and name[:-5].isdigit()
        ]
        self.count = max(existing, default=0)

    def mode(self):
        try:
            with open(os.path.join(self.directory, "mode"), encoding="utf-8") as file:
                return file.read().strip() or "accept"
        except FileNotFoundError:
            return "accept"

    async def handle_DATA(self, server, session, envelope):
        mode = self.mode()
        if mode == "tempfail":
            return "451 4.3.0 Temporary failure, try again later"
        if mode == "permfail":
            return "550 5.7.1 Message rejected"
        if mode == "hang":
            await asyncio.sleep(3600)
            return "451 4.4.2 Timed out"
        raw = envelope.original_content or envelope.content
        if HEADERS_ONLY:
            headers = email.parser.BytesHeaderParser().parsebytes(raw)
            record = {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "message_id": headers.get("Message-ID"),
                "subject": headers.get("Subject"),
            }
            return self.store(record)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "message_id": message.get("Message-ID"),
            "subject": message.get("Subject"),
            "from": message.get("From"),
            "reply_to": message.get("Reply-To"),
            "content_type": message.get_content_type(),
            "text": part_text(message, "plain"),
            "html": part_text(message, "html"),
            "raw": raw.decode("utf-8", errors="replace"),
        }
        return self.store(record)

    def store(self, record):
        with self.lock:
            self.count += 1
            number = self.count
        final = os.path.join(self.directory, f"{number}.json")
        temporary = os.path.join(self.directory, f".{number}.json.tmp")
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump(record, file, ensure_ascii=False)
        os.replace(temporary, final)
        return "250 2.0.0 OK"


def main():
    if len(sys.argv) not in (2, 3):
        sys.stderr.write(__doc__)
        return 2
    directory = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) == 3 else 0
    os.makedirs(directory, exist_ok=True)
    if port == 0:
        port = free_port()

    controller = Controller(Sink(directory), hostname=HOST, port=port)
    controller.start()
    print(port, flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    try:
        controller.stop()
    except Exception as error:  # a hanging session must not keep the process alive
        sys.stderr.write(f"smtp_sink: stop: {error}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
