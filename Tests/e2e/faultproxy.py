#!/usr/bin/env python3
"""
faultproxy.py — a fault-injecting DNS proxy between a KRS and the KDC (Tests/e2e/faults.sh).

Listens on UDP and TCP at --listen (127.0.0.0/8 only) and forwards every message to the KDC at
--upstream. Upstream sockets are bound to the client's own IP (loopback allows any 127/8
source), so the KDC still sees the node's address, e.g. on confirmation NOTIFYs.

Faults (command-line flags, or the same names in the JSON --control file, which is re-read
whenever it changes; a change also resets the "once" faults and the data-chunk counter):

  --servfail-chunk N   answer the Nth data-chunk query (CHUNK, sequence >= 1) with SERVFAIL, once
  --reset-chunk N      send half of the answer to the Nth data-chunk query over TCP, then reset
                       the connection (RST), once
  --wrong-type T       rewrite the type of the CHUNK records in answers to T (default target:
                       every CHUNK answer; --wrong-type-on manifest|data|all)
  --delay-data S       hold every data-chunk answer S seconds (a slow KDC)
  --drop               drop everything: UDP is not answered, TCP is accepted, read, never answered
  --drop-notify        drop NOTIFYs (the node's confirmations to the KDC)
  --drop-udp-notify    drop NOTIFYs over UDP only (a path where only TCP reaches the KDC)

--events FILE gets one JSON line per message (time, transport, qname, kind, sequence, action),
so a test can see how many manifest and chunk queries a node made. Nothing from the payload is
logged. Stops on SIGTERM/SIGINT.
"""
import argparse
import json
import os
import signal
import socket
import struct
import sys
import threading
import time

import dns.flags
import dns.message
import dns.opcode
import dns.rcode

CHUNK_TYPES = (65288, 65015)

FAULT_KEYS = ("servfail_chunk", "reset_chunk", "wrong_type", "wrong_type_on", "delay_data", "drop", "drop_notify",
              "drop_udp_notify")


def hostport(text):
    host, _, port = text.rpartition(":")
    if not host.startswith("127."):
        raise argparse.ArgumentTypeError(f"{text}: 127.0.0.0/8 only")
    return host, int(port)


class Faults:
    """The current fault settings and the once-only bookkeeping, shared by every thread."""

    def __init__(self, args):
        self.lock = threading.Lock()
        self.base = {k: getattr(args, k) for k in FAULT_KEYS}
        self.control = args.control
        self.control_sig = None
        self.events_path = args.events
        self.events = open(args.events, "a", buffering=1) if args.events else None
        self._apply(dict(self.base))

    def _apply(self, settings):
        self.settings = settings
        self.data_seen = 0
        self.servfail_done = False
        self.reset_done = False

    def refresh(self):
        """Re-reads the control file when it changed (called under the lock)."""
        if not self.control:
            return
        try:
            st = os.stat(self.control)
            sig = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            sig = None
        if sig == self.control_sig:
            return
        self.control_sig = sig
        settings = dict(self.base)
        if sig is not None:
            try:
                with open(self.control) as f:
                    text = f.read()
                settings.update({k: v for k, v in json.loads(text or "{}").items() if k in FAULT_KEYS})
            except (OSError, ValueError) as e:
                self.log({"event": "control-error", "error": str(e)[:200]})
        self._apply(settings)
        self.log({"event": "control", "settings": settings})

    def log(self, record):
        if self.events:
            record = {"t": round(time.time(), 6), **record}
            self.events.write(json.dumps(record) + "\n")

    def decide(self, kind, transport, qname=None):
        """Returns (action, settings) for one query: forward, servfail, reset, drop."""
        with self.lock:
            self.refresh()
            self.log({"event": "query", "transport": transport, "qkind": kind, "qname": qname})
            s = self.settings
            if s.get("drop") or (kind == "notify" and (s.get("drop_notify") or (s.get("drop_udp_notify") and transport == "udp"))):
                return "drop", s
            if kind != "data":
                return "forward", s
            self.data_seen += 1
            n = self.data_seen
            if s.get("servfail_chunk") and n == int(s["servfail_chunk"]) and not self.servfail_done:
                self.servfail_done = True
                return "servfail", s
            if s.get("reset_chunk") and transport == "tcp" and n >= int(s["reset_chunk"]) and not self.reset_done:
                self.reset_done = True
                return "reset", s
            return "forward", s


def raw_question(wire):
    """(opcode, qname text, qtype) from the wire, without trusting a DNS library with the rest."""
    if len(wire) < 12:
        return None
    opcode = (wire[2] >> 3) & 0x0F
    (qdcount,) = struct.unpack(">H", wire[4:6])
    if qdcount < 1:
        return opcode, None, None
    labels, off = [], 12
    while off < len(wire):
        length = wire[off]
        if length == 0 or length & 0xC0:
            break
        labels.append(wire[off + 1:off + 1 + length].decode("ascii", "replace"))
        off += 1 + length
    if off + 3 > len(wire) or wire[off] != 0:
        return opcode, None, None
    (qtype,) = struct.unpack(">H", wire[off + 1:off + 3])
    return opcode, ".".join(labels) + ".", qtype


def classify(wire):
    """(kind, qname, sequence, parsed message or None): manifest, data, notify, other, garbage."""
    q = raw_question(wire)
    if q is None:
        return "garbage", None, None, None
    opcode, name, qtype = q
    try:
        m = dns.message.from_wire(wire, ignore_trailing=True)
    except Exception:
        m = None
    if opcode == dns.opcode.NOTIFY:
        return "notify", name, None, m
    if name is None:
        return "other", None, None, m
    if qtype in CHUNK_TYPES:
        first = name.split(".", 1)[0]
        if first.isdigit() and int(first) > 0:
            return "data", name, int(first), m
        return "manifest", name, 0, m
    return "other", name, None, m


def servfail(query_msg):
    r = dns.message.make_response(query_msg)
    r.set_rcode(dns.rcode.SERVFAIL)
    r.flags |= dns.flags.AA
    return r.to_wire()


def skip_name(b, off):
    while True:
        length = b[off]
        if length == 0:
            return off + 1
        if length & 0xC0 == 0xC0:
            return off + 2
        off += 1 + length


def rewrite_types(wire, to_type):
    """The answer with the type of every CHUNK RR in the answer section set to to_type."""
    b = bytearray(wire)
    qd, an = struct.unpack(">HH", b[4:8])
    off = 12
    for _ in range(qd):
        off = skip_name(b, off) + 4
    changed = 0
    for _ in range(an):
        off = skip_name(b, off)
        (t,) = struct.unpack(">H", b[off:off + 2])
        if t in CHUNK_TYPES:
            b[off:off + 2] = struct.pack(">H", to_type)
            changed += 1
        (rdlen,) = struct.unpack(">H", b[off + 8:off + 10])
        off += 10 + rdlen
    return bytes(b), changed


def wrong_type_applies(settings, kind):
    if not settings.get("wrong_type"):
        return False
    target = settings.get("wrong_type_on") or "all"
    return kind in ("manifest", "data") and (target == "all" or target == kind)


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        part = sock.recv(n - len(buf))
        if not part:
            return None
        buf += part
    return buf


def read_framed(sock):
    head = recv_exact(sock, 2)
    if head is None:
        return None
    (length,) = struct.unpack(">H", head)
    return recv_exact(sock, length)


def reset(sock):
    """Closes with RST instead of FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class Proxy:
    def __init__(self, args):
        self.args = args
        self.faults = Faults(args)
        self.listen = args.listen
        self.upstream = args.upstream
        self.stop = threading.Event()
        self.conns = set()
        self.conns_lock = threading.Lock()

    # --- UDP ----------------------------------------------------------------------------------

    def udp_loop(self, sock):
        while not self.stop.is_set():
            try:
                wire, peer = sock.recvfrom(65535)
            except OSError:
                return
            threading.Thread(target=self.udp_one, args=(sock, wire, peer), daemon=True).start()

    def udp_one(self, sock, wire, peer):
        kind, qname, seq, msg = classify(wire)
        action, settings = self.faults.decide(kind, "udp", qname)
        ev = {"transport": "udp", "peer": peer[0], "kind": kind, "qname": qname, "seq": seq, "action": action}
        if action == "drop":
            self.faults.log(ev)
            return
        if action == "servfail" and msg is not None:
            sock.sendto(servfail(msg), peer)
            self.faults.log(ev)
            return
        if kind == "data" and settings.get("delay_data"):
            time.sleep(float(settings["delay_data"]))
        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            up.bind((peer[0], 0))
        except OSError:
            up.bind((self.listen[0], 0))
        up.settimeout(self.args.upstream_timeout)
        try:
            up.sendto(wire, self.upstream)
            answer, _ = up.recvfrom(65535)
        except OSError as e:
            ev.update(action="upstream-error", error=str(e)[:120])
            self.faults.log(ev)
            return
        finally:
            up.close()
        if wrong_type_applies(settings, kind):
            answer, n = rewrite_types(answer, int(settings["wrong_type"]))
            if n:
                ev["action"] = "wrong-type"
        sock.sendto(answer, peer)
        self.faults.log(ev)

    # --- TCP ----------------------------------------------------------------------------------

    def tcp_loop(self, lsock):
        while not self.stop.is_set():
            try:
                conn, peer = lsock.accept()
            except OSError:
                return
            with self.conns_lock:
                self.conns.add(conn)
            threading.Thread(target=self.tcp_conn, args=(conn, peer), daemon=True).start()

    def tcp_conn(self, conn, peer):
        up = None
        try:
            while not self.stop.is_set():
                try:
                    wire = read_framed(conn)
                except OSError:
                    return
                if wire is None:
                    return
                kind, qname, seq, msg = classify(wire)
                action, settings = self.faults.decide(kind, "tcp", qname)
                ev = {"transport": "tcp", "peer": peer[0], "kind": kind, "qname": qname, "seq": seq, "action": action}
                if action == "drop":
                    self.faults.log(ev)
                    continue  # read on, never answer
                if action == "servfail" and msg is not None:
                    out = servfail(msg)
                    conn.sendall(struct.pack(">H", len(out)) + out)
                    self.faults.log(ev)
                    continue
                if kind == "data" and settings.get("delay_data"):
                    time.sleep(float(settings["delay_data"]))
                try:
                    if up is None:
                        up = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                        try:
                            up.bind((peer[0], 0))
                        except OSError:
                            up.bind((self.listen[0], 0))
                        up.settimeout(self.args.upstream_timeout)
                        up.connect(self.upstream)
                    up.sendall(struct.pack(">H", len(wire)) + wire)
                    answer = read_framed(up)
                    if answer is None:
                        raise ConnectionError("upstream closed the connection")
                except OSError as e:
                    # The KDC went away: so does this connection (the node sees it end).
                    ev.update(action="upstream-error", error=str(e)[:120])
                    self.faults.log(ev)
                    return
                if wrong_type_applies(settings, kind):
                    answer, n = rewrite_types(answer, int(settings["wrong_type"]))
                    if n:
                        ev["action"] = "wrong-type"
                framed = struct.pack(">H", len(answer)) + answer
                if action == "reset":
                    conn.sendall(framed[: max(3, len(framed) // 2)])
                    time.sleep(0.05)
                    self.faults.log(ev)
                    with self.conns_lock:
                        self.conns.discard(conn)
                    reset(conn)
                    conn = None
                    return
                conn.sendall(framed)
                self.faults.log(ev)
        except OSError:
            return
        finally:
            if up is not None:
                up.close()
            if conn is not None:
                with self.conns_lock:
                    self.conns.discard(conn)
                try:
                    conn.close()
                except OSError:
                    pass

    def run(self):
        usock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        usock.bind(self.listen)
        tsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tsock.bind(self.listen)
        tsock.listen(64)

        def stop(*_):
            self.stop.set()
            for s in (usock, tsock):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        threads = [threading.Thread(target=self.udp_loop, args=(usock,), daemon=True),
                   threading.Thread(target=self.tcp_loop, args=(tsock,), daemon=True)]
        for t in threads:
            t.start()
        self.faults.log({"event": "listening", "listen": f"{self.listen[0]}:{self.listen[1]}"})
        print(f"listening {self.listen[0]}:{self.listen[1]}", flush=True)
        while not self.stop.is_set():
            self.stop.wait(0.2)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listen", type=hostport, required=True)
    p.add_argument("--upstream", type=hostport, required=True)
    p.add_argument("--control", help="JSON file with fault settings, re-read when it changes")
    p.add_argument("--events", help="append one JSON line per message here")
    p.add_argument("--upstream-timeout", type=float, default=10.0)
    p.add_argument("--servfail-chunk", type=int, default=0)
    p.add_argument("--reset-chunk", type=int, default=0)
    p.add_argument("--wrong-type", type=int, default=0)
    p.add_argument("--wrong-type-on", choices=("all", "manifest", "data"), default="all")
    p.add_argument("--delay-data", type=float, default=0.0)
    p.add_argument("--drop", action="store_true")
    p.add_argument("--drop-notify", action="store_true")
    p.add_argument("--drop-udp-notify", action="store_true")
    Proxy(p.parse_args()).run()


if __name__ == "__main__":
    sys.exit(main())
