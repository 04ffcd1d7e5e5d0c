#!/usr/bin/env python3
"""counts.py — per-backend counts for Tests/mixed/run.sh, as "hpke:C/F jose:C/F".

  counts.py kdc STATUS.json NODE   the KDC's distributions of NODE: confirmed / failed (a
                                   withdrawn one — superseded or node removed — is neither)
"""
import json
import sys


def main():
    out = []
    if sys.argv[1] == "kdc":
        d = json.load(open(sys.argv[2]))
        ds = [x for x in d["distributions"] if x["node_id"] == sys.argv[3]]
        for b in ("hpke", "jose"):
            mine = [x for x in ds if x["crypto"] == b]
            ok = sum(x["state"] == "confirmed" for x in mine)
            bad = sum(x["state"] == "failed" and (x.get("reason") or "").startswith("backend mismatch") for x in mine)
            out.append(f"{b}:{ok}/{bad}")
    print(" ".join(out))


main()
