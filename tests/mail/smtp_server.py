"""A recording SMTP server for Keydrop's email tests (aiosmtpd).

Listens on 127.0.0.1:PORT, requires STARTTLS with the given certificate, and
writes every accepted message to OUT/<n>.eml (the envelope recipients first,
as `X-Rcpt-To:` lines). Recipients listed with --refuse are answered 550.
Prints "ready" once it accepts connections.
"""
import argparse
import os
import signal
import ssl
import threading

from aiosmtpd.controller import Controller


class Recorder:
    def __init__(self, out, refuse):
        self.out = out
        self.refuse = {a.lower() for a in refuse}
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse:
            return "550 5.1.1 <%s>: Recipient address rejected: no such user here" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            n = self.count
        head = "".join("X-Rcpt-To: %s\r\n" % r for r in envelope.rcpt_tos)
        tmp = os.path.join(self.out, "%04d.tmp" % n)
        with open(tmp, "wb") as f:
            f.write(head.encode())
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(self.out, "%04d.eml" % n))
        return "250 Message accepted for delivery"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--refuse", action="append", default=[])
    a = p.parse_args()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(a.cert, a.key)
    controller = Controller(
        Recorder(a.out, a.refuse),
        hostname="127.0.0.1",
        port=a.port,
        tls_context=ctx,
        require_starttls=True,
        ready_timeout=10,
    )
    controller.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
