#!/usr/bin/env python3
"""counts.py — a node's per-backend counts against the KDC's, for Tests/mixed/run.sh.

  counts.py STATUS.json NODE NODE.log

From `tdns-kdc status --json`: the node's distributions per backend, confirmed, failed with a
backend mismatch, and superseded (made again for the node's new key at a re-enrollment; the
node may have processed the old one before it learnt of the new key, or not). From the node's
log: "Distribution <id> processed successfully (backend: B" and "refused: backend mismatch: …
received an B distribution". Prints "ok hpke:P/F jose:P/F" when, per backend, processed is
between confirmed and confirmed + superseded and the failures are equal; else "mismatch …".
"""
import json
import re
import sys


def main():
    d = json.load(open(sys.argv[1]))
    node = sys.argv[2]
    log = open(sys.argv[3], errors="replace").read()
    ds = [x for x in d["distributions"] if x["node_id"] == node]
    got, bad = [], []
    for b in ("hpke", "jose"):
        mine = [x for x in ds if x["crypto"] == b]
        confirmed = sum(x["state"] == "confirmed" for x in mine)
        superseded = sum((x.get("reason") or "").startswith("superseded by ") for x in mine)
        failed = sum((x.get("reason") or "").startswith("backend mismatch") for x in mine)
        processed = len(re.findall(r"Distribution [0-9a-f]+ processed successfully \(backend: %s," % b, log))
        refused = len(re.findall(r"refused: backend mismatch: [a-z]+ node received an %s distribution" % b, log))
        got.append(f"{b}:{processed}/{refused}")
        if not (confirmed <= processed <= confirmed + superseded) or refused != failed:
            bad.append(f"{b}: node {processed}/{refused}, KDC confirmed {confirmed} (+{superseded} superseded), failed {failed}")
    print(("mismatch " + "; ".join(bad)) if bad else "ok " + " ".join(got))


main()
