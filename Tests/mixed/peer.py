#!/usr/bin/env python3
"""peer.py — the independent peer of Tests/mixed/run.sh (pyhpke, jwcrypto; not libtdnskrs).

  peer.py ZONEFILE < LINES      each line: NODE DISTID KEYFILE...

Reads the control zone printed by `tdns-kdc export-zone`, takes the CHUNK records of the
distribution DISTID for NODE (manifest and data chunks, PROTOCOL §2.3/§2.6), rebuilds the
ciphertext (§6; a JWS wrapper is unwrapped without verification, only the ciphertext inside
matters here) and tries to open it with each KEYFILE: an HPKE private key (64 hex characters,
§7) or a JOSE private JWK (§8.1). Prints one line per input line: NODE DISTID <crypto of the
manifest metadata> and "opens"/"fails" per key file, in order.
"""
import base64
import json
import sys

from jwcrypto import jwe as jjwe
from jwcrypto import jwk as jjwk
from pyhpke import AEADId, CipherSuite, KDFId, KEMId

SUITE = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES256_GCM)


def b64u(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def records(path, node, dist):
    """(manifest JSON, {seq: data bytes}) of NODE's distribution DIST."""
    suffix_node = node.rstrip(".").lower()
    manifest, chunks = None, {}
    for line in open(path):
        f = line.split()
        if len(f) < 9 or "CHUNK" not in f[:5]:
            continue
        i = f.index("CHUNK")
        owner = f[0].lower().rstrip(".")
        seq, data = int(f[i + 1]), f[i + 5]
        labels = owner.split(".")
        if dist not in labels:
            continue
        left = ".".join(labels[: labels.index(dist)])
        if left.split(".", 1)[0].isdigit() and left.split(".", 1)[-1] == suffix_node:
            pass
        elif left != suffix_node:
            continue
        if seq == 0:  # JSON (format 1) or a JWT (format 2, §9.3): its payload is the JSON
            manifest = json.loads(data if data.startswith("{") else b64u(data.split(".")[1]))
        else:
            chunks[seq] = base64.b64decode(data)
    return manifest, chunks


def ciphertext(manifest, chunks):
    if manifest.get("chunk_count", 0):
        blob = b"".join(chunks[i] for i in sorted(chunks))
    else:
        blob = base64.b64decode(manifest["payload"])
    c = base64.b64decode(blob)
    if all(32 <= b < 127 for b in c) and c.count(b".") == 2:  # a JWS: its payload is the ciphertext
        c = b64u(c.split(b".")[1].decode("ascii"))
    return c


def try_open(keyfile, c):
    try:
        text = open(keyfile).read()
        if "{" in text:
            d = jjwe.JWE()
            d.deserialize(c.decode("ascii"), key=jjwk.JWK.from_json(text[text.index("{"):text.rindex("}") + 1]))
            return d.payload is not None
        raw = bytes.fromhex([ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")][0].strip())
        skr = SUITE.kem.deserialize_private_key(raw)
        ctx = SUITE.create_recipient_context(c[:32], skr)
        ctx.open(c[32:])
        return True
    except Exception:
        return False


def main():
    path = sys.argv[1]
    for line in sys.stdin:
        f = line.split()
        if len(f) < 3:
            continue
        node, dist, keys = f[0], f[1], f[2:]
        manifest, chunks = records(path, node, dist)
        if manifest is None:
            print(node, dist, "no-manifest")
            continue
        c = ciphertext(manifest, chunks)
        print(node, dist, manifest.get("metadata", manifest).get("crypto", "?"),
              *("opens" if try_open(k, c) else "fails" for k in keys))
    return 0


sys.exit(main())
