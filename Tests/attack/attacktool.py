#!/usr/bin/env python3
"""
attacktool.py — the off-path attacks of Tests/attack/run.sh. Every subcommand prints one JSON
object (never key material). 127.0.0.0/8 only.

  notify   --to IP:PORT --name QNAME [--sign none|kdc|random|tampered] [--kdc-key PEM]
           [--kdc-keyline FILE] [--signer ZONE] [--source IP] [--tcp] [--opcode N]
           one NOTIFY (or another opcode); SIG(0) by the KDC's Ed25519 key (kdc), by a random
           Ed25519 key claiming the control zone (random), or by the KDC's key over another
           name and then re-pointed (tampered); prints the answer's RCODE
  flood    --to IP:PORT --zone CZ --rate N --seconds S [--source IP]
           unsigned NOTIFYs, each for a fresh random distribution ID, at N per second
  spray    --to IP:PORT --zone CZ --ids ID,ID --source IP --seconds S [--interval S]
           unsigned confirmation NOTIFYs (a key status report) for the given IDs, from IP
  chunkq   --to IP:PORT --name QNAME [--tcp]        one CHUNK query; RCODE and answer count
  logflood --to IP:PORT --zone CZ --seconds S [--source IP]
           refused requests as fast as possible: garbage, CHUNK queries for unknown nodes,
           NOTIFYs for unknown distributions
  drip     --to IP:PORT --sources IP,IP --per-source N [--interval S] --out FILE
           N TCP connections per source that send one byte every S seconds and never finish
           a message; reconnect 0.5 s after the server closes one; status in --out every
           second; runs until SIGTERM
  rss      --pid P --limit-mb M --stop FILE --out FILE
           samples VmRSS every 50 ms until FILE exists; SIGKILLs P above M MiB
  events   --file F [--id ID] [--above HEX]      the fake KDC's events, counted
"""
import argparse
import base64
import json
import os
import random
import select
import signal
import socket
import struct
import sys
import time

CHUNK = 65288


def out(obj):
    print(json.dumps(obj, sort_keys=True), flush=True)


def hostport(text):
    host, _, port = text.rpartition(":")
    if not host.startswith("127."):
        raise argparse.ArgumentTypeError(f"{text}: 127.0.0.0/8 only")
    return host, int(port)


def name_wire(name):
    b = b""
    for label in name.rstrip(".").split("."):
        if label:
            b += bytes([len(label)]) + label.encode()
    return b + b"\x00"


def message(qid, opcode, name, qtype=CHUNK, aa=True, additional=b"", arcount=0):
    flags = (opcode << 11) | (0x0400 if aa else 0)
    return struct.pack(">HHHHHH", qid, flags, 1, 0, 0, arcount) + name_wire(name) + struct.pack(">HH", qtype, 1) + additional


RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED", 9: "NOTAUTH"}


def rcode_of(wire):
    return RCODES.get(wire[3] & 0xF, str(wire[3] & 0xF)) if len(wire) >= 12 else "garbage"


# --- SIG(0), RFC 2931, Ed25519 ------------------------------------------------------------------

def key_tag(rdata):
    ac = 0
    for i, b in enumerate(rdata):
        ac += b << 8 if i % 2 == 0 else b
    ac += (ac >> 16) & 0xFFFF
    return ac & 0xFFFF


def sig0_sign(unsigned, private_key, public_raw, signer, flags=256):
    """The message with a SIG(0) RR appended (owner root, class ANY, TTL 0)."""
    tag = key_tag(struct.pack(">HBB", flags, 3, 15) + public_raw)
    now = int(time.time())
    pre = struct.pack(">HBBIIIH", 0, 15, 0, 0, now + 300, now - 300, tag) + name_wire(signer)
    signature = private_key.sign(pre + unsigned)
    rdata = pre + signature
    arcount = struct.unpack(">H", unsigned[10:12])[0] + 1
    return unsigned[:10] + struct.pack(">H", arcount) + unsigned[12:] + b"\x00" + struct.pack(">HHIH", 24, 255, 0, len(rdata)) + rdata


def load_kdc_key(pem_path, keyline_path):
    from cryptography.hazmat.primitives import serialization
    with open(pem_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    flags = 256
    if keyline_path:
        with open(keyline_path) as f:
            fields = f.read().split()
        i = fields.index("KEY")
        flags = int(fields[i + 1])
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key, raw, flags


def exchange(wire, to, source="127.0.0.1", tcp=False, timeout=3.0):
    if tcp:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((source, 0))
        s.settimeout(timeout)
        try:
            s.connect(to)
            s.sendall(struct.pack(">H", len(wire)) + wire)
            head = b""
            while len(head) < 2:
                part = s.recv(2 - len(head))
                if not part:
                    return None
                head += part
            n = struct.unpack(">H", head)[0]
            body = b""
            while len(body) < n:
                part = s.recv(n - len(body))
                if not part:
                    return None
                body += part
            return body
        except OSError:
            return None
        finally:
            s.close()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((source, 0))
    s.settimeout(timeout)
    try:
        s.sendto(wire, to)
        end = time.time() + timeout
        while time.time() < end:
            data, _ = s.recvfrom(65535)
            if data[:2] == wire[:2]:
                return data
        return None
    except OSError:
        return None
    finally:
        s.close()


def cmd_notify(a):
    qid = random.randint(1, 0xFFFF)
    wire = message(qid, a.opcode, a.name)
    signer = a.signer or a.name
    if a.sign == "kdc":
        key, raw, flags = load_kdc_key(a.kdc_key, a.kdc_keyline)
        wire = sig0_sign(wire, key, raw, signer, flags)
    elif a.sign == "random":
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives import serialization
        key = Ed25519PrivateKey.generate()
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        wire = sig0_sign(wire, key, raw, signer)
    elif a.sign == "tampered":
        # A genuine KDC signature over a NOTIFY for another ID, then the QNAME's first label
        # rewritten to the name wanted (same length): the signature no longer covers it.
        key, raw, flags = load_kdc_key(a.kdc_key, a.kdc_keyline)
        first, rest = a.name.split(".", 1)
        other = "".join(random.choice("0123456789abcdef") for _ in first)
        signed = sig0_sign(message(qid, a.opcode, f"{other}.{rest}"), key, raw, signer, flags)
        wire = signed.replace(name_wire(f"{other}.{rest}"), name_wire(a.name), 1)
    answer = exchange(wire, a.to, a.source, a.tcp, a.timeout)
    out({"sent": True, "signed": a.sign, "answered": answer is not None,
         "rcode": rcode_of(answer) if answer else None})


def cmd_flood(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a.source, 0))
    s.setblocking(False)
    sent, answers, rcodes = 0, 0, {}
    t0 = time.monotonic()
    ids = set()
    while True:
        elapsed = time.monotonic() - t0
        if elapsed >= a.seconds:
            break
        due = int(elapsed * a.rate) + 1
        while sent < due:
            did = "%08x" % random.getrandbits(32)
            while did in ids:
                did = "%08x" % random.getrandbits(32)
            ids.add(did)
            try:
                s.sendto(message(random.randint(1, 0xFFFF), 4, f"{did}.{a.zone}"), a.to)
            except BlockingIOError:
                pass
            sent += 1
        while True:
            try:
                data, _ = s.recvfrom(65535)
            except (BlockingIOError, OSError):
                break
            answers += 1
            rc = rcode_of(data)
            rcodes[rc] = rcodes.get(rc, 0) + 1
        time.sleep(0.001)
    out({"sent": sent, "seconds": round(time.monotonic() - t0, 2), "rate": round(sent / max(0.001, time.monotonic() - t0)),
         "answered": answers, "rcodes": rcodes})


def edns_chunk_option(content_type, content):
    """OPT RR with one CHUNK option (code 65004, PROTOCOL §4.1): Format 1 ‖ HMACLen 0 ‖
    DataLength ‖ Data, Data = content type ‖ content."""
    data = bytes([content_type]) + content
    option = struct.pack(">BHH", 1, 0, len(data)) + data
    opt = struct.pack(">HH", 65004, len(option)) + option
    return b"\x00" + struct.pack(">HHIH", 41, 4096, 0x00008000, len(opt)) + opt


def cmd_spray(a):
    ids = [i for i in a.ids.split(",") if i]
    answers = {i: {} for i in ids}
    report = json.dumps({"successful_keys": [{"zone_name": a.report_zone, "key_id": a.report_key}]}).encode()
    opt = edns_chunk_option(1, report)
    socks = []
    for _ in ids:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((a.source, 0))
        s.setblocking(False)
        socks.append(s)
    sent = 0
    t0 = time.monotonic()
    pending = {}
    while time.monotonic() - t0 < a.seconds:
        for did, s in zip(ids, socks):
            qid = random.randint(1, 0xFFFF)
            pending[(s.fileno(), qid)] = did
            try:
                s.sendto(message(qid, 4, f"{did}.{a.zone}", additional=opt, arcount=1), a.to)
                sent += 1
            except OSError:
                pass
        end = time.monotonic() + a.interval
        while time.monotonic() < end:
            r, _, _ = select.select(socks, [], [], max(0, end - time.monotonic()))
            for s in r:
                try:
                    data, _ = s.recvfrom(65535)
                except OSError:
                    continue
                did = pending.get((s.fileno(), struct.unpack(">H", data[:2])[0]))
                if did:
                    rc = rcode_of(data)
                    answers[did][rc] = answers[did].get(rc, 0) + 1
    out({"sent": sent, "answers": answers})


def cmd_chunkq(a):
    wire = message(random.randint(1, 0xFFFF), 0, a.name, aa=False)
    answer = exchange(wire, a.to, a.source, a.tcp, a.timeout)
    if answer is None:
        out({"answered": False})
        return
    out({"answered": True, "rcode": rcode_of(answer), "answers": struct.unpack(">H", answer[6:8])[0]})


def cmd_logflood(a):
    socks = []
    for _ in range(4):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((a.source, 0))
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        socks.append(s)
    kinds = [
        lambda i: struct.pack(">HHHHHH", i, 0, 1, 0, 0, 0) + b"\x3fbroken",                      # unparseable
        lambda i: message(i, 0, f"n{i}.unknown-node.{random.getrandbits(32):08x}.{a.zone}", aa=False),  # unknown node
        lambda i: message(i, 4, f"{random.getrandbits(32):08x}.{a.zone}"),                          # unknown distribution
        lambda i: message(i, 0, f"x{i}.not-the-control-zone.", aa=False),                           # outside the zone
    ]
    sent = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < a.seconds:
        for _ in range(200):
            i = sent & 0xFFFF
            try:
                socks[sent % 4].sendto(kinds[sent % 4](i), a.to)
            except (BlockingIOError, OSError):
                pass
            sent += 1
        for s in socks:
            try:
                while True:
                    s.recv(65535)
            except (BlockingIOError, OSError):
                pass
    secs = time.monotonic() - t0
    out({"sent": sent, "seconds": round(secs, 2), "rate": round(sent / secs)})


def cmd_drip(a):
    sources = [s for s in a.sources.split(",") if s]
    conns = {}   # slot -> dict(sock, sent, next, since)
    stats = {"connects": 0, "closed_by_server": 0, "connect_failures": 0, "bytes": 0}
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    slots = [(src, i) for src in sources for i in range(a.per_source)]
    retry_at = {slot: 0.0 for slot in slots}
    # A message that never ends: length 512, then its bytes one at a time.
    payload = struct.pack(">H", 512) + os.urandom(510)
    last_status = 0.0
    while not stopping:
        now = time.monotonic()
        for slot in slots:
            if slot in conns or now < retry_at[slot]:
                continue
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((slot[0], 0))
                s.settimeout(1.0)
                s.connect(a.to)
                s.setblocking(False)
            except OSError:
                stats["connect_failures"] += 1
                s.close()
                retry_at[slot] = now + 0.5
                continue
            conns[slot] = {"sock": s, "sent": 0, "next": now + 0.2, "since": now}
            stats["connects"] += 1
        for slot, c in list(conns.items()):
            s = c["sock"]
            dead = False
            try:
                data = s.recv(4096)
                if data == b"":
                    dead = True
            except BlockingIOError:
                pass
            except OSError:
                dead = True
            if not dead and now >= c["next"]:
                try:
                    n = s.send(payload[c["sent"] % len(payload):c["sent"] % len(payload) + 1])
                    c["sent"] += n
                    stats["bytes"] += n
                except BlockingIOError:
                    pass
                except OSError:
                    dead = True
                c["next"] = now + a.interval
            if dead:
                stats["closed_by_server"] += 1
                s.close()
                del conns[slot]
                retry_at[slot] = now + 0.5
        if now - last_status >= 1.0:
            last_status = now
            st = dict(stats, open=len(conns), target=len(slots),
                      oldest=round(max([now - c["since"] for c in conns.values()] or [0]), 1))
            tmp = a.out + ".tmp"
            with open(tmp, "w") as f:
                json.dump(st, f)
            os.replace(tmp, a.out)
        time.sleep(0.05)
    for c in conns.values():
        c["sock"].close()


def vmrss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cmd_rss(a):
    base = vmrss_kb(a.pid)
    peak = base or 0
    killed = False
    samples = 0
    while not os.path.exists(a.stop):
        kb = vmrss_kb(a.pid)
        if kb is None:
            break
        samples += 1
        peak = max(peak, kb)
        if kb > a.limit_mb * 1024 and not killed:
            os.kill(a.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.05)
    res = {"baseline_mb": round((base or 0) / 1024, 1), "peak_mb": round(peak / 1024, 1),
           "growth_mb": round((peak - (base or 0)) / 1024, 1), "killed_over_limit": killed, "samples": samples}
    with open(a.out, "w") as f:
        json.dump(res, f)
    out(res)


def cmd_events(a):
    ev = []
    if os.path.exists(a.file):
        with open(a.file) as f:
            for line in f:
                try:
                    ev.append(json.loads(line))
                except ValueError:
                    pass
    if a.id:
        ev = [e for e in ev if e.get("id") == a.id or e.get("carrier") == a.id]
    if a.above:
        lim = int(a.above, 16)
        def above(e):
            i = e.get("id") or e.get("carrier")
            try:
                return i is not None and int(i, 16) > lim
            except ValueError:
                return False
        ev = [e for e in ev if above(e)]
    kinds, actions, events = {}, {}, {}
    for e in ev:
        if "kind" in e and "event" not in e:
            kinds[f"{e['transport']}:{e['kind']}"] = kinds.get(f"{e['transport']}:{e['kind']}", 0) + 1
            actions[e["action"]] = actions.get(e["action"], 0) + 1
        if "event" in e:
            events[e["event"]] = events.get(e["event"], 0) + 1
    manifest_ids = sorted({e["id"] for e in ev if e.get("kind") == "manifest" and "event" not in e and e.get("id")})
    out({"kinds": kinds, "actions": actions, "events": events,
         "manifest_queries": sum(1 for e in ev if e.get("kind") == "manifest" and "event" not in e),
         "manifest_ids": len(manifest_ids),
         "data_queries": sum(1 for e in ev if e.get("kind") == "data" and "event" not in e),
         "harvest": [e.get("how") for e in ev if e.get("event") == "harvest"],
         "rewrap": [e.get("variant") for e in ev if e.get("event") == "rewrap-served"],
         "trickles": [{k: e.get(k) for k in ("how", "seconds", "sent", "bytes", "seq")} for e in ev if e.get("event") == "trickle-end"],
         "trickles_started": sum(1 for e in ev if e.get("event") == "trickle-start")})


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("notify")
    s.add_argument("--to", type=hostport, required=True)
    s.add_argument("--name", required=True)
    s.add_argument("--sign", choices=("none", "kdc", "random", "tampered"), default="none")
    s.add_argument("--kdc-key")
    s.add_argument("--kdc-keyline")
    s.add_argument("--signer")
    s.add_argument("--source", default="127.0.0.1")
    s.add_argument("--tcp", action="store_true")
    s.add_argument("--opcode", type=int, default=4)
    s.add_argument("--timeout", type=float, default=3.0)
    s = sub.add_parser("flood")
    s.add_argument("--to", type=hostport, required=True)
    s.add_argument("--zone", required=True)
    s.add_argument("--rate", type=float, default=1000)
    s.add_argument("--seconds", type=float, default=10)
    s.add_argument("--source", default="127.0.0.1")
    s = sub.add_parser("spray")
    s.add_argument("--to", type=hostport, required=True)
    s.add_argument("--zone", required=True)
    s.add_argument("--ids", required=True)
    s.add_argument("--source", required=True)
    s.add_argument("--seconds", type=float, default=8)
    s.add_argument("--interval", type=float, default=0.05)
    s.add_argument("--report-zone", default="example.test.")
    s.add_argument("--report-key", default="1")
    s = sub.add_parser("chunkq")
    s.add_argument("--to", type=hostport, required=True)
    s.add_argument("--name", required=True)
    s.add_argument("--source", default="127.0.0.1")
    s.add_argument("--tcp", action="store_true")
    s.add_argument("--timeout", type=float, default=3.0)
    s = sub.add_parser("logflood")
    s.add_argument("--to", type=hostport, required=True)
    s.add_argument("--zone", required=True)
    s.add_argument("--seconds", type=float, default=10)
    s.add_argument("--source", default="127.0.0.1")
    s = sub.add_parser("drip")
    s.add_argument("--to", type=hostport, required=True)
    s.add_argument("--sources", required=True)
    s.add_argument("--per-source", type=int, required=True)
    s.add_argument("--interval", type=float, default=2.0)
    s.add_argument("--out", required=True)
    s = sub.add_parser("rss")
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--limit-mb", type=int, required=True)
    s.add_argument("--stop", required=True)
    s.add_argument("--out", required=True)
    s = sub.add_parser("events")
    s.add_argument("--file", required=True)
    s.add_argument("--id")
    s.add_argument("--above")
    a = p.parse_args()
    return {"notify": cmd_notify, "flood": cmd_flood, "spray": cmd_spray, "chunkq": cmd_chunkq,
            "logflood": cmd_logflood, "drip": cmd_drip, "rss": cmd_rss, "events": cmd_events}[a.cmd](a) or 0


if __name__ == "__main__":
    sys.exit(main())
