#!/usr/bin/env python3
"""
faulttool.py — helpers of Tests/e2e/faults.sh. Every subcommand prints one JSON object (never
key material: key files are checked for shape and compared by digest inside this process).

  notify   --to IP:PORT --zone CZ --id ID [--count N] [--within S] [--sig0-key PEM]
           N NOTIFYs for <ID>.<CZ> (qtype CHUNK) over UDP, spread over S seconds; counts answers
  watch    --dir D --stop FILE --out FILE
           polls key dir D until FILE exists: a .key never without its .private, nothing
           incomplete under a final name; writes the summary to --out
  killer   --dir D --pid P --on temp|commit [--key KBASE] --out FILE --armed FILE
           (inotify) on the first temporary key file created in D (temp) or the first .private
           renamed into place (commit): SIGSTOP P, record D, SIGKILL P
  keys     --dir D                      the key directory's state (complete pairs, halves, temps)
  snapshot --dir D --out FILE           digests of every file in D (mode 0600 file)
  compare  --dir D --snapshot FILE      what changed in D since the snapshot
  audit    --file F [--id ID]           audit.log lines by result (for one distribution ID)
  events   --file F [--id ID]           the proxy's events by kind and action
  kdc      --state K --kdc BIN --ids ID,ID [--timeout S]
           waits until every ID is confirmed at the KDC; prints their states
  timing   --state K --kdc BIN --node N --zone Z --key TAG [--runs 20]
           distribute one key, wait for "confirmed" in tdns-kdc status; repeats; median
"""
import argparse
import ctypes
import hashlib
import json
import os
import re
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode

CHUNK = 65288
KEYFILE = re.compile(r"^K(?P<zone>.+)\+(?P<alg>\d{3})\+(?P<tag>\d{5})\.(?P<ext>key|private|state)$")
TEMPFILE = re.compile(r"^\.K.*\.tmp\.")
RSA_FIELDS = ("Modulus", "PublicExponent", "PrivateExponent", "Prime1", "Prime2", "Exponent1", "Exponent2", "Coefficient")


def out(obj):
    print(json.dumps(obj, sort_keys=True))


# --- key directory ------------------------------------------------------------------------------

def private_complete(text):
    """A BIND .private in full (shape only; values are not looked at beyond being base64)."""
    if not text.endswith("\n"):
        return False
    fields = {}
    for line in text.splitlines():
        if ":" in line:
            k, _, v = line.partition(":")
            fields[k.strip()] = v.strip()
    if not fields.get("Private-key-format", "").startswith("v1.") or "Algorithm" not in fields:
        return False
    alg = fields["Algorithm"].split()[0]
    need = RSA_FIELDS if alg in ("5", "7", "8", "10") else ("PrivateKey",)
    return all(fields.get(f) for f in need)


def key_complete(text):
    return text.endswith("\n") and any(" DNSKEY " in l or "\tDNSKEY\t" in l for l in text.splitlines() if not l.startswith(";"))


def key_dir_state(d, names=None):
    names = sorted(os.listdir(d)) if names is None else names
    bases, temps, other, incomplete = {}, [], [], []
    for n in names:
        if TEMPFILE.match(n):
            temps.append(n)
            continue
        m = KEYFILE.match(n)
        if not m:
            other.append(n)
            continue
        base = n.rsplit(".", 1)[0]
        bases.setdefault(base, set()).add(m.group("ext"))
        try:
            with open(os.path.join(d, n), encoding="ascii", errors="replace") as f:
                text = f.read()
        except FileNotFoundError:
            continue  # removed between listing and reading (deletions)
        ok = private_complete(text) if m.group("ext") == "private" else key_complete(text) if m.group("ext") == "key" else True
        if not ok:
            incomplete.append(n)
    complete = sorted(b for b, e in bases.items() if {"key", "private"} <= e)
    key_only = sorted(b for b, e in bases.items() if "key" in e and "private" not in e)
    private_only = sorted(b for b, e in bases.items() if "private" in e and "key" not in e)
    return {"complete": complete, "key_only": key_only, "private_only": private_only,
            "temps": temps, "other": other, "incomplete": incomplete}


def cmd_keys(a):
    out(key_dir_state(a.dir))


def cmd_watch(a):
    polls = 0
    violations = []
    seen_temps = 0
    max_complete = 0
    while not os.path.exists(a.stop):
        try:
            names = os.listdir(a.dir)
        except FileNotFoundError:
            break
        st = key_dir_state(a.dir, sorted(names))
        polls += 1
        seen_temps = max(seen_temps, len(st["temps"]))
        max_complete = max(max_complete, len(st["complete"]))
        for b in st["key_only"]:
            violations.append({"poll": polls, "what": "a .key without its .private", "file": b})
        for n in st["incomplete"]:
            violations.append({"poll": polls, "what": "incomplete file under its final name", "file": n})
        for n in st["other"]:
            violations.append({"poll": polls, "what": "unexpected file", "file": n})
        if len(violations) > 50:
            break
        time.sleep(a.interval)
    with open(a.out, "w") as f:
        json.dump({"polls": polls, "violations": violations[:50], "max_temps_seen": seen_temps,
                   "max_complete": max_complete}, f)


IN_CREATE = 0x100
IN_MOVED_TO = 0x80


def cmd_killer(a):
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    fd = libc.inotify_init1(0)
    if fd < 0:
        out({"error": "inotify_init1 failed"})
        return 1
    mask = IN_CREATE if a.on == "temp" else IN_MOVED_TO
    if libc.inotify_add_watch(fd, a.dir.encode(), mask) < 0:
        out({"error": "inotify_add_watch failed"})
        return 1
    with open(a.armed, "w") as f:
        f.write("armed\n")
    deadline = time.time() + a.timeout
    import select
    trigger = None
    while trigger is None:
        left = deadline - time.time()
        if left <= 0:
            break
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            break
        buf = os.read(fd, 65536)
        off = 0
        while off < len(buf):
            _wd, _mask, _cookie, length = struct.unpack_from("iIII", buf, off)
            name = buf[off + 16:off + 16 + length].rstrip(b"\0").decode("ascii", "replace")
            off += 16 + length
            # Only the files of the key under test: a retry of an earlier distribution may
            # install another key meanwhile, and killing during that one proves nothing.
            if a.key and a.key not in name:
                continue
            if a.on == "temp" and TEMPFILE.match(name):
                trigger = name
                break
            if a.on == "commit" and KEYFILE.match(name) and name.endswith(".private"):
                trigger = name
                break
    result = {"trigger": a.on, "fired": trigger is not None, "file": trigger}
    if trigger is not None:
        try:
            os.kill(a.pid, signal.SIGSTOP)
            result["state_at_kill"] = key_dir_state(a.dir)
            os.kill(a.pid, signal.SIGKILL)
        except ProcessLookupError:
            result["error"] = "process already gone"
    with open(a.out, "w") as f:
        json.dump(result, f)
    out(result)
    return 0


def digests(d):
    res = {}
    for n in sorted(os.listdir(d)):
        p = os.path.join(d, n)
        with open(p, "rb") as f:
            res[n] = [hashlib.sha256(f.read()).hexdigest(), os.stat(p).st_mtime_ns]
    return res


def cmd_snapshot(a):
    fd = os.open(a.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(digests(a.dir), f)
    out({"files": len(os.listdir(a.dir))})


def cmd_compare(a):
    with open(a.snapshot) as f:
        before = json.load(f)
    now = digests(a.dir)
    out({"added": sorted(set(now) - set(before)), "removed": sorted(set(before) - set(now)),
         "changed": sorted(n for n in set(now) & set(before) if now[n] != before[n])})


# --- logs ---------------------------------------------------------------------------------------

def cmd_audit(a):
    lines = []
    if os.path.exists(a.file):
        with open(a.file) as f:
            for line in f:
                try:
                    lines.append(json.loads(line))
                except ValueError:
                    lines.append({"result": "unparsable"})
    if a.id:
        lines = [l for l in lines if l.get("distribution_id") == a.id]
    by = {}
    for l in lines:
        by[l.get("result", "?")] = by.get(l.get("result", "?"), 0) + 1
    keys = {}
    for l in lines:
        if l.get("result") == "installed":
            k = f"{l.get('zone')}/{l.get('key_tag')}"
            keys[k] = keys.get(k, 0) + 1
    out({"lines": len(lines), "by_result": by, "installed_per_key": keys,
         "refusals": [{"code": l.get("code"), "reason": (l.get("reason") or "")[:160]} for l in lines if l.get("result") == "refused"]})


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
        ev = [e for e in ev if e.get("qname") and f".{a.id}." in "." + e["qname"]]
    kinds, actions = {}, {}
    for e in ev:
        if "kind" in e:
            key = f"{e['transport']}:{e['kind']}"
            kinds[key] = kinds.get(key, 0) + 1
            actions[e["action"]] = actions.get(e["action"], 0) + 1
    out({"events": len(ev), "kinds": kinds, "actions": actions,
         "manifest_queries": sum(1 for e in ev if e.get("kind") == "manifest"),
         "data_queries": sum(1 for e in ev if e.get("kind") == "data"),
         "data_answered": sum(1 for e in ev if e.get("kind") == "data" and e.get("action") == "forward")})


# --- NOTIFY -------------------------------------------------------------------------------------

def load_sig0_key(path):
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    with open(path, "rb") as f:
        return load_pem_private_key(f.read(), None)


def sig0_sign(wire, key, signer):
    """RFC 2931 SIG(0) with an Ed25519 key (algorithm 15): SIG RR owner ".", class ANY, TTL 0,
    signed over the SIG RDATA without the signature and the message before the SIG was added."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    keyrdata = struct.pack("!HBB", 256, 3, 15) + public
    ac = sum(b if i & 1 else b << 8 for i, b in enumerate(keyrdata))
    tag = (ac + ((ac >> 16) & 0xFFFF)) & 0xFFFF
    now = int(time.time())
    rdata = struct.pack("!HBBIIIH", 0, 15, 0, 0, now + 300, now - 60, tag) + dns.name.from_text(signer).to_wire()
    signature = key.sign(rdata + wire)
    rr = b"\0" + struct.pack("!HHIH", 24, 255, 0, len(rdata) + len(signature)) + rdata + signature
    arcount = struct.unpack("!H", wire[10:12])[0] + 1
    return wire[:10] + struct.pack("!H", arcount) + wire[12:] + rr


def cmd_notify(a):
    host, _, port = a.to.rpartition(":")
    qname = f"{a.id}.{a.zone}"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a.source, 0))
    s.setblocking(False)
    ids = set()
    answers = {}
    t0 = time.monotonic()
    import select

    def drain(wait):
        end = time.monotonic() + wait
        while True:
            left = end - time.monotonic()
            r, _, _ = select.select([s], [], [], max(0, left))
            if not r:
                if left <= 0:
                    return
                continue
            try:
                wire, _ = s.recvfrom(65535)
            except BlockingIOError:
                continue
            try:
                m = dns.message.from_wire(wire)
            except Exception:
                answers.setdefault("garbage", 0)
                continue
            if m.id in ids and m.flags & dns.flags.QR:
                answers[m.id] = (dns.rcode.to_text(m.rcode()), bool(m.flags & dns.flags.AA))

    key = load_sig0_key(a.sig0_key) if a.sig0_key else None
    for i in range(a.count):
        m = dns.message.make_query(qname, CHUNK)
        m.flags = dns.flags.AA           # no RD; then the opcode (it lives in the flags word)
        m.set_opcode(dns.opcode.NOTIFY)
        while m.id in ids:
            m.id = (m.id + 1) & 0xFFFF
        ids.add(m.id)
        wire = m.to_wire()
        if key is not None:              # as the KDC signs NOTIFYs for nodes that verify them
            wire = sig0_sign(wire, key, a.zone)
        s.sendto(wire, (host, int(port)))
        target = t0 + a.within * (i + 1) / a.count
        drain(max(0.0, target - time.monotonic()))
    sent_in = time.monotonic() - t0
    drain(2.0)
    vals = [v for k, v in answers.items() if k != "garbage"]
    out({"sent": a.count, "sent_in_seconds": round(sent_in, 3), "answered": len(vals),
         "noerror_aa": sum(1 for r, aa in vals if r == "NOERROR" and aa),
         "rcodes": sorted({r for r, _ in vals})})


# --- KDC ----------------------------------------------------------------------------------------

def kdc_states(kdc, state):
    p = subprocess.run([kdc, "status", "--state", state, "--json"], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        return {}
    return {d["distribution_id"]: d for d in json.loads(p.stdout).get("distributions", [])}


def cmd_kdc(a):
    ids = [i for i in a.ids.split(",") if i]
    deadline = time.time() + a.timeout
    while True:
        st = kdc_states(a.kdc, a.state)
        done = all(st.get(i, {}).get("state") == "confirmed" for i in ids)
        if done or time.time() > deadline:
            break
        time.sleep(0.1)
    out({"all_confirmed": done, "states": {i: st.get(i, {}).get("state") for i in ids},
         "confirmed_by": {i: st.get(i, {}).get("confirmed_by") for i in ids}})


def cmd_timing(a):
    times = []
    failures = 0
    for _ in range(a.runs):
        t0 = time.monotonic()
        p = subprocess.run([a.kdc, "distribute", "--state", a.state, "--node", a.node, "--zone", a.zone,
                            "--key", a.key, "--json"], capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            failures += 1
            continue
        did = json.loads(p.stdout)["distributions"][0]["distribution_id"]
        ok = False
        while time.monotonic() - t0 < a.timeout:
            if kdc_states(a.kdc, a.state).get(did, {}).get("state") == "confirmed":
                ok = True
                break
            time.sleep(0.005)
        if ok:
            times.append(time.monotonic() - t0)
        else:
            failures += 1
    out({"runs": a.runs, "confirmed": len(times), "failures": failures,
         "median": round(statistics.median(times), 3) if times else None,
         "min": round(min(times), 3) if times else None, "max": round(max(times), 3) if times else None})


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("notify")
    s.add_argument("--to", required=True)
    s.add_argument("--zone", required=True)
    s.add_argument("--id", required=True)
    s.add_argument("--count", type=int, default=1)
    s.add_argument("--within", type=float, default=1.0)
    s.add_argument("--source", default="127.0.0.1")
    s.add_argument("--sig0-key", default=None, help="sign with this Ed25519 PKCS#8 PEM key (the KDC's), signer = --zone")
    s = sub.add_parser("watch")
    s.add_argument("--dir", required=True)
    s.add_argument("--stop", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--interval", type=float, default=0.002)
    s = sub.add_parser("killer")
    s.add_argument("--dir", required=True)
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--on", choices=("temp", "commit"), required=True)
    s.add_argument("--key", default="", help="only files whose name contains this (a K-file base)")
    s.add_argument("--out", required=True)
    s.add_argument("--armed", required=True)
    s.add_argument("--timeout", type=float, default=30)
    s = sub.add_parser("keys")
    s.add_argument("--dir", required=True)
    s = sub.add_parser("snapshot")
    s.add_argument("--dir", required=True)
    s.add_argument("--out", required=True)
    s = sub.add_parser("compare")
    s.add_argument("--dir", required=True)
    s.add_argument("--snapshot", required=True)
    s = sub.add_parser("audit")
    s.add_argument("--file", required=True)
    s.add_argument("--id")
    s = sub.add_parser("events")
    s.add_argument("--file", required=True)
    s.add_argument("--id")
    s = sub.add_parser("kdc")
    s.add_argument("--state", required=True)
    s.add_argument("--kdc", required=True)
    s.add_argument("--ids", required=True)
    s.add_argument("--timeout", type=float, default=20)
    s = sub.add_parser("timing")
    s.add_argument("--state", required=True)
    s.add_argument("--kdc", required=True)
    s.add_argument("--node", required=True)
    s.add_argument("--zone", required=True)
    s.add_argument("--key", required=True)
    s.add_argument("--runs", type=int, default=20)
    s.add_argument("--timeout", type=float, default=20)
    a = p.parse_args()
    return {"notify": cmd_notify, "watch": cmd_watch, "killer": cmd_killer, "keys": cmd_keys,
            "snapshot": cmd_snapshot, "compare": cmd_compare, "audit": cmd_audit, "events": cmd_events,
            "kdc": cmd_kdc, "timing": cmd_timing}[a.cmd](a) or 0


if __name__ == "__main__":
    sys.exit(main())
