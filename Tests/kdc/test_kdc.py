"""
Integration tests of the reference KDC `tdns-kdc` (issues 4, 10, 11), driven as an operator would.

Everything that checks the KDC's output is written from PROTOCOL.md alone, with libraries
nobody here wrote: pyhpke (HPKE, RFC 9180), jwcrypto (JWE/JWS), cryptography (PEM keys,
Ed25519, HMAC) and dnspython (DNS messages). The KDC's distributions also go through our own
libtdnskrs (`krs_process_distribution`, Tests/kdc/test_kdc_krs.c).

Environment: KDC_BIN (the tdns-kdc binary), TDNSKRS_BUILD (build dir with lib/), WORK (a
scratch directory). Servers listen on 127.0.0.1 high ports only and are stopped at the end.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.update
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwcrypto import jwe, jwk, jws
from pyhpke import AEADId, CipherSuite, KDFId, KEMId

KDC = os.environ.get("KDC_BIN", "tdns-kdc")
BUILD = os.environ.get("TDNSKRS_BUILD", "")
WORK = os.environ.get("WORK", "/tmp")
HERE = os.path.dirname(os.path.abspath(__file__))
CZ = "kdc.example."
CHUNK = 65288
CHUNK_LEGACY = 65015
CHUNK_OPTION = 65004
SUITE = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES256_GCM)


# --- helpers ------------------------------------------------------------------------------------

def run(state, *args, check=True):
    p = subprocess.run([KDC, *args, "--state", state], capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError(f"tdns-kdc {' '.join(args)} exited {p.returncode}: {p.stderr.strip()[:300]}")
    return p


def run_json(state, *args):
    return json.loads(run(state, *args, "--json").stdout)


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1 (high, kernel-chosen)."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            u.close()
            t.close()
        if port > 1024:
            return port
    raise RuntimeError("no free port")


def rfc4034_key_tag(rdata):
    acc = 0
    for i, b in enumerate(rdata):
        acc += b << 8 if i % 2 == 0 else b
    acc += (acc >> 16) & 0xFFFF
    return acc & 0xFFFF


def parse_chunk(rdata):
    """PROTOCOL §2.2: Format u8, HMACLen u16, HMAC, Sequence u16, Total u16, DataLength u16, Data."""
    fmt = rdata[0]
    (hlen,) = struct.unpack(">H", rdata[1:3])
    mac = rdata[3:3 + hlen]
    seq, total, dlen = struct.unpack(">HHH", rdata[3 + hlen:9 + hlen])
    data = rdata[9 + hlen:]
    assert len(data) == dlen, "DataLength covers the rest of the RDATA exactly"
    return {"format": fmt, "hmac": mac, "sequence": seq, "total": total, "data": data}


def chunk_query(server, name, qid=None):
    q = dns.message.make_query(name, CHUNK, use_edns=0, payload=4096, want_dnssec=True)
    q.flags &= ~dns.flags.RD
    if qid is not None:
        q.id = qid
    r = dns.query.tcp(q, "127.0.0.1", port=server.port, timeout=10)
    return r


def fetch(server, node, dist_id, signing=None):
    """Manifest and data chunks over TCP, as a KRS fetches them (PROTOCOL §5.1). A Format 1
    manifest is returned with its JSON; a Format 2 manifest (§9.3) is verified with `signing`
    (the KDC's public JWK, jwcrypto) and returned with its JWT claims."""
    r = chunk_query(server, f"{node}{dist_id}.{CZ}")
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    assert len(r.answer) == 1 and r.answer[0].ttl == 300 and r.answer[0].rdtype == CHUNK
    manifest = parse_chunk(r.answer[0][0].to_digestable())
    assert manifest["sequence"] == 0
    if manifest["format"] == 2:
        assert manifest["hmac"] == b"", "a JWT manifest has no HMAC"
        assert signing is not None, "Format 2 manifest, but the test expected the Go format"
        meta = jwt_claims(manifest["data"].decode("ascii"), signing)
    else:
        assert manifest["format"] == 1 and len(manifest["hmac"]) == 32
        meta = json.loads(manifest["data"])
    chunks = []
    for i in range(1, meta["chunk_count"] + 1):
        d = chunk_query(server, f"{i}.{node}{dist_id}.{CZ}")
        assert d.rcode() == dns.rcode.NOERROR
        c = parse_chunk(d.answer[0][0].to_digestable())
        assert c["sequence"] == i and c["total"] == meta["chunk_count"] and c["hmac"] == b""
        chunks.append(c["data"])
    return manifest, meta, chunks


def jwt_claims(compact, signing):
    """Verifies an ES256 compact JWS with jwcrypto and returns its claims, keys in wire order."""
    assert compact.count(".") == 2, "compact JWS"
    token = jws.JWS()
    token.deserialize(compact)
    token.verify(signing, alg="ES256")
    header = json.loads(base64.urlsafe_b64decode(compact.split(".")[0] + "=="))
    assert header["alg"] == "ES256"
    return json.loads(token.payload)


def signing_key(kdc):
    return jwk.JWK.from_json(open(os.path.join(kdc["state"], "kdc.signing.pubkey")).read())


def transport_blob(meta, chunks):
    """PROTOCOL §6: inline payload is base64 of B (in a JWT manifest the payload claim is B
    itself, §9.3); chunked B is the concatenation."""
    if meta["chunk_count"] == 0:
        if "iss" in meta:
            return meta["payload"].encode("ascii")
        return base64.b64decode(meta["payload"], validate=True)
    return b"".join(chunks)


def hpke_open(priv_raw, ct):
    skr = SUITE.kem.deserialize_private_key(priv_raw)
    ctx = SUITE.create_recipient_context(ct[:32], skr)
    return ctx.open(ct[32:])


def hpke_keypair():
    kp = SUITE.kem.derive_key_pair(os.urandom(32))
    return kp.public_key.to_public_bytes(), kp.private_key.to_private_bytes()


def check_roll_key(entry, key_json):
    """PROTOCOL §10.2: Go's member order, the DNSKEY line, the PKCS#8 PEM of the key."""
    assert list(entry) == ["operation", "zone_name", "key_id", "key_type", "algorithm", "flags", "public_key", "private_key"]
    assert entry["operation"] == "roll_key" and entry["zone_name"] == key_json["zone"]
    assert entry["key_id"] == str(key_json["key_tag"]) and entry["algorithm"] == key_json["algorithm"]
    assert entry["public_key"] == key_json["dnskey"]
    owner, ttl, cls, typ, rdata = entry["public_key"].split("\t")
    assert (owner, ttl, cls, typ) == (key_json["zone"], "3600", "IN", "DNSKEY")
    flags, proto, alg, b64 = rdata.split(" ", 3)
    pub = base64.b64decode(b64.replace(" ", ""))
    wire = struct.pack(">HBB", int(flags), int(proto), int(alg)) + pub
    assert rfc4034_key_tag(wire) == key_json["key_tag"], "key_id is the RFC 4034 key tag of the DNSKEY"
    pem = base64.b64decode(entry["private_key"], validate=True)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    priv = serialization.load_pem_private_key(pem, password=None)
    if isinstance(priv, ec.EllipticCurvePrivateKey):
        n = priv.public_key().public_numbers()
        size = (priv.curve.key_size + 7) // 8
        assert n.x.to_bytes(size, "big") + n.y.to_bytes(size, "big") == pub, "private key matches the DNSKEY"
    elif isinstance(priv, ed25519.Ed25519PrivateKey):
        assert priv.public_key().public_bytes_raw() == pub
    else:
        n = priv.public_key().public_numbers()
        e = n.e.to_bytes((n.e.bit_length() + 7) // 8, "big")
        m = n.n.to_bytes((n.n.bit_length() + 7) // 8, "big")
        assert bytes([len(e)]) + e + m == pub


def check_manifest(manifest, meta, node, dist_id, crypto, hmac_key):
    # §9.2: HMAC-SHA256 over Format ‖ Data, keyed with the node's public key material.
    assert hmac.compare_digest(manifest["hmac"], hmac.new(hmac_key, bytes([1]) + manifest["data"], hashlib.sha256).digest())
    # §9.1: member order and metadata as Go's encoding/json writes them.
    keys = list(meta)
    assert keys[0] == "chunk_count" and "metadata" in keys
    assert keys == [k for k in ["chunk_count", "chunk_size", "metadata", "payload"] if k in meta]
    md = meta["metadata"]
    assert list(md) == sorted(md), "metadata keys sorted (Go map)"
    assert md["node_id"] == node and md["distribution_id"] == dist_id
    assert md.get("crypto") == crypto, "crypto absent exactly for the v1 layout (§6)"
    assert md["distribution_ttl"] == "5m0s" and isinstance(md["timestamp"], int)
    assert abs(md["timestamp"] - time.time()) < 600
    assert manifest["total"] == meta["chunk_count"]


# --- fixtures -----------------------------------------------------------------------------------

class Server:
    def __init__(self, state, port, metrics=None):
        self.state, self.port, self.metrics = state, port, metrics
        self.log = open(os.path.join(WORK, f"serve-{port}.log"), "w")
        extra = ["--metrics", f"127.0.0.1:{metrics}"] if metrics else []
        self.proc = subprocess.Popen([KDC, "serve", "--state", state, *extra], stdout=self.log, stderr=subprocess.STDOUT)
        with open(os.path.join(WORK, "pids"), "a") as f:
            f.write(f"{self.proc.pid}\n")
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"tdns-kdc serve exited {self.proc.returncode}")
                time.sleep(0.1)
        raise RuntimeError("tdns-kdc serve did not start listening")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def kdc():
    state = os.path.join(WORK, "kdc-state")
    port = free_port()
    run(state, "init", "--control-zone", CZ, "--listen", f"127.0.0.1:{port}")
    run(state, "zone", "add", "example.com.")
    key = run_json(state, "key", "generate", "--zone", "example.com.", "--algorithm", "13", "--type", "ksk")
    server = Server(state, port)
    yield {"state": state, "server": server, "key": key, "port": port}
    server.stop()


# --- command line -------------------------------------------------------------------------------

BAD_INPUT = [
    ["node", "add", "no-trailing-dot", "--crypto", "hpke", "--hpke-pubkey", "00" * 32],
    ["node", "add", "x.example.", "--crypto", "rsa"],
    ["node", "add", "x.example.", "--crypto", "hpke", "--hpke-pubkey", "zz"],
    ["node", "add", "x.example.", "--crypto", "jose", "--jose-pubkey", "{not json"],
    ["node", "add", "x.example.", "--crypto", "hpke", "--hpke-pubkey", "11" * 32, "--notify", "localhost:53"],
    ["key", "generate", "--zone", "example.com.", "--algorithm", "99", "--type", "ksk"],
    ["key", "generate", "--zone", "nosuch.example.", "--algorithm", "13", "--type", "ksk"],
    ["key", "generate", "--zone", "example.com.", "--algorithm", "13", "--type", "big"],
    ["key", "import", "--zone", "example.com.", "/nonexistent/K.private"],
    ["distribute", "--zone", "example.com."],
    ["distribute", "--all", "--node", "x.example.", "--zone", "example.com."],
    ["distribute", "--node", "nobody.example.", "--zone", "example.com."],
    ["distribute", "--all", "--zone", "example.com.", "--op", "explode"],
    ["enroll", "activate", "nobody.example."],
    ["enroll", "activate", "x.example.", "--window", "soon"],
    ["zone", "add", "example.com."],
    ["init", "--control-zone", CZ, "--listen", "127.0.0.1:1"],
    ["status", "--node", "nobody.example."],
    ["frobnicate"],
    ["node", "add"],
    ["node", "add", "x.example.", "--crypto", "hpke", "--hpke-pubkey", "11" * 32, "--hpke-layout", "v1"],
    ["node", "add", "x.example.", "--crypto", "hpke", "--hpke-pubkey", "11" * 32, "--legacy", "--hpke-layout", "v3"],
    ["node", "add", "x.example.", "--crypto", "jose", "--jose-pubkey", '{"kty":"EC"}', "--legacy", "--hpke-layout", "v1"],
    ["node", "set", "nobody.example.", "--legacy"],
    ["node", "set", "x.example.", "--legacy", "--signed"],
    ["node", "set", "x.example."],
    ["node", "set", "x.example.", "--signed", "--hpke-layout", "v1"],
]


def enrollment_state(kdc):
    """What a refused command or request must not change: nodes, enrollments, keys, zones and
    the set of distributions. (Not the whole file: `serve` updates distribution states —
    notified, confirmed — concurrently.)"""
    with open(os.path.join(kdc["state"], "kdc.json")) as f:
        d = json.load(f)
    state = {k: d.get(k) for k in ("nodes", "enrollments", "keys", "zones")}
    dists = d.get("distributions") or []
    state["distribution_ids"] = sorted(x.get("distribution_id") for x in dists)
    return json.dumps(state, sort_keys=True)


@pytest.mark.parametrize("args", BAD_INPUT, ids=[" ".join(a)[:60] for a in BAD_INPUT])
def test_bad_input_is_one_line_and_exit_2(kdc, args):
    before = enrollment_state(kdc)
    p = run(kdc["state"], *args, check=False)
    assert p.returncode == 2, f"exit {p.returncode}, stderr {p.stderr!r}"
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tdns-kdc: "), p.stderr
    assert "Fatal error" not in p.stderr and "Stack" not in p.stderr
    assert enrollment_state(kdc) == before, "state unchanged"


def test_missing_state_is_exit_2():
    p = subprocess.run([KDC, "status"], capture_output=True, text=True, env={"PATH": os.environ.get("PATH", "")})
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1


def test_key_files_are_0600(kdc):
    keys = os.path.join(kdc["state"], "keys")
    names = sorted(os.listdir(keys))
    assert {"kdc.hpke.privatekey", "kdc.jose.privatekey", "kdc.signing.privatekey", "kdc.sig0.privatekey"} <= set(names)
    for n in names:
        assert os.stat(os.path.join(keys, n)).st_mode & 0o777 == 0o600, n
    assert os.stat(os.path.join(kdc["state"], "kdc.json")).st_mode & 0o777 == 0o600


# --- golden distributions (PROTOCOL §2, §6, §8, §9, §10) ------------------------------------------

def test_legacy_hpke_distribution_golden(kdc):
    pub, priv = hpke_keypair()
    node = "hpke-legacy.example."
    run(kdc["state"], "node", "add", node, "--crypto", "hpke", "--hpke-pubkey", pub.hex(), "--legacy")
    dist = run_json(kdc["state"], "distribute", "--node", node, "--zone", "example.com.")["distributions"][0]
    assert dist["signed"] is False
    manifest, meta, chunks = fetch(kdc["server"], node, dist["distribution_id"])
    check_manifest(manifest, meta, node, dist["distribution_id"], "hpke", pub)
    assert meta["metadata"]["content"] == "key_operations"
    assert (meta["metadata"]["zone_count"], meta["metadata"]["key_count"], meta["metadata"]["operation_count"]) == (1, 1, 1)
    assert meta["chunk_count"] == 1 and meta["chunk_size"] == 60000, "a PEM key does not fit inline (§2.5)"
    ct = base64.b64decode(transport_blob(meta, chunks), validate=True)
    assert not all(0x21 <= b <= 0x7E for b in ct), "legacy: raw HPKE bytes, not a (printable) JWS"
    entries = json.loads(hpke_open(priv, ct))
    assert len(entries) == 1
    check_roll_key(entries[0], kdc["key"])


def test_legacy_jose_distribution_golden(kdc):
    key = jwk.JWK.generate(kty="EC", crv="P-256")
    public = key.export_public()
    node = "jose-legacy.example."
    run(kdc["state"], "node", "add", node, "--crypto", "jose", "--jose-pubkey", public, "--legacy")
    dist = run_json(kdc["state"], "distribute", "--node", node, "--zone", "example.com.")["distributions"][0]
    manifest, meta, chunks = fetch(kdc["server"], node, dist["distribution_id"])
    x = base64.urlsafe_b64decode(json.loads(public)["x"] + "==")
    assert len(x) == 32
    check_manifest(manifest, meta, node, dist["distribution_id"], "jose", x)
    compact = base64.b64decode(transport_blob(meta, chunks), validate=True).decode("ascii")
    assert compact.count(".") == 4, "JWE compact serialization (§8.2)"
    token = jwe.JWE()
    token.deserialize(compact, key=key)
    header = json.loads(token.objects["protected"])
    assert header["alg"] == "ECDH-ES" and header["enc"] == "A256GCM" and header["epk"]["crv"] == "P-256"
    entries = json.loads(token.payload)
    check_roll_key(entries[0], kdc["key"])


def test_legacy_hpke_v1_decoded_as_the_go_krs_decodes_it(kdc):
    """§6/§21: a Go KRS with use_crypto_v2: false drops the first 32 bytes and HPKE-opens the rest."""
    pub, priv = hpke_keypair()
    node = "hpke-v1.example."
    run(kdc["state"], "node", "add", node, "--crypto", "hpke", "--hpke-pubkey", pub.hex(), "--legacy", "--hpke-layout", "v1")
    dist = run_json(kdc["state"], "distribute", "--node", node, "--zone", "example.com.")["distributions"][0]
    assert dist["signed"] is False and dist["hpke_layout"] == "v1"
    manifest, meta, chunks = fetch(kdc["server"], node, dist["distribution_id"])
    check_manifest(manifest, meta, node, dist["distribution_id"], None, pub)
    ct = base64.b64decode(transport_blob(meta, chunks), validate=True)
    assert ct[:32] == ct[32:64], "E ‖ E ‖ AEAD"
    entries = json.loads(hpke_open(priv, ct[32:]))
    check_roll_key(entries[0], kdc["key"])


def test_signed_distributions_carry_a_jwt_manifest_by_the_kdc_signing_key(kdc):
    """§9.3: Format 2 manifest, ES256 by the KDC signing key (verified with jwcrypto), binding the
    distribution, the node, the time and the payload hash; the ciphertext itself is not wrapped."""
    signing = signing_key(kdc)
    pub, priv = hpke_keypair()
    run(kdc["state"], "node", "add", "hpke-signed.example.", "--crypto", "hpke", "--hpke-pubkey", pub.hex())
    jkey = jwk.JWK.generate(kty="EC", crv="P-256")
    run(kdc["state"], "node", "add", "jose-signed.example.", "--crypto", "jose", "--jose-pubkey", jkey.export_public())
    for node, crypto in [("hpke-signed.example.", "hpke"), ("jose-signed.example.", "jose")]:
        dist = run_json(kdc["state"], "distribute", "--node", node, "--zone", "example.com.")["distributions"][0]
        assert dist["signed"] is True
        manifest, claims, chunks = fetch(kdc["server"], node, dist["distribution_id"], signing=signing)
        assert manifest["total"] == claims["chunk_count"] == dist["chunk_count"] >= 1
        assert list(claims) == sorted(claims), "members in Go's map order"
        assert set(claims) == {"iss", "sub", "iat", "exp", "distribution_id", "receiver_id", "content", "crypto", "chunk_count",
                               "chunk_size", "chunk_hash", "key_count", "operation_count", "zone_count", "distribution_ttl"}
        assert claims["iss"] == CZ and claims["sub"] == "distribution"
        assert claims["distribution_id"] == dist["distribution_id"] and claims["receiver_id"] == node
        assert claims["crypto"] == crypto and claims["content"] == "key_operations"
        assert claims["exp"] - claims["iat"] == 300 and claims["distribution_ttl"] == "5m0s"
        assert abs(claims["iat"] - time.time()) < 600 and claims["chunk_size"] == 60000
        assert (claims["zone_count"], claims["key_count"], claims["operation_count"]) == (1, 1, 1)
        blob = transport_blob(claims, chunks)
        assert claims["chunk_hash"] == "sha256:" + hashlib.sha256(blob).hexdigest()
        ct = base64.b64decode(blob, validate=True)
        if crypto == "hpke":
            entries = json.loads(hpke_open(priv, ct))
        else:
            compact = ct.decode("ascii")
            assert compact.count(".") == 4, "the JWE itself, no JWS around it"
            token = jwe.JWE()
            token.deserialize(compact, key=jkey)
            entries = json.loads(token.payload)
        check_roll_key(entries[0], kdc["key"])
        # A claim changed (another distribution ID) no longer verifies.
        h, p, sig = manifest["data"].decode("ascii").split(".")
        forged = json.loads(base64.urlsafe_b64decode(p + "=="))
        forged["distribution_id"] = "0badcafe"
        body = base64.urlsafe_b64encode(json.dumps(forged, separators=(",", ":")).encode()).rstrip(b"=").decode()
        tampered = jws.JWS()
        tampered.deserialize(f"{h}.{body}.{sig}")
        with pytest.raises(Exception):
            tampered.verify(signing, alg="ES256")


def test_ping_is_inline_mgmt_operations(kdc):
    pub, priv = hpke_keypair()
    node = "ping.example."
    run(kdc["state"], "node", "add", node, "--crypto", "hpke", "--hpke-pubkey", pub.hex(), "--legacy")
    dist = run_json(kdc["state"], "distribute", "--node", node, "--op", "ping")["distributions"][0]
    manifest, meta, chunks = fetch(kdc["server"], node, dist["distribution_id"])
    assert meta["chunk_count"] == 0 and "chunk_size" not in meta and "payload" in meta, "inline (§2.5)"
    assert meta["metadata"]["content"] == "mgmt_operations"
    entries = json.loads(hpke_open(priv, base64.b64decode(transport_blob(meta, chunks))))
    assert list(entries[0]) == ["operation", "metadata"] and entries[0]["operation"] == "ping"
    assert list(entries[0]["metadata"]) == ["crypto", "nonce", "timestamp"]
    assert len(bytes.fromhex(entries[0]["metadata"]["nonce"])) == 32


def test_chunk_query_errors(kdc):
    pub, _ = hpke_keypair()
    run(kdc["state"], "node", "add", "q1.example.", "--crypto", "hpke", "--hpke-pubkey", pub.hex(), "--legacy")
    run(kdc["state"], "node", "add", "q2.example.", "--crypto", "hpke", "--hpke-pubkey", hpke_keypair()[0].hex(), "--legacy")
    dist = run_json(kdc["state"], "distribute", "--node", "q1.example.", "--zone", "example.com.")["distributions"][0]
    d = dist["distribution_id"]
    expect = {
        f"q2.example.{d}.{CZ}": dns.rcode.SERVFAIL,   # another node's distribution
        f"nobody.example.{d}.{CZ}": dns.rcode.NXDOMAIN,
        f"5.q1.example.{d}.{CZ}": dns.rcode.NXDOMAIN,  # index out of range
        f"q1.example.zz.{CZ}": dns.rcode.FORMERR,       # malformed name
    }
    for name, rcode in expect.items():
        assert chunk_query(kdc["server"], name).rcode() == rcode, name


def test_krs_process_distribution_installs_keys(kdc, tmp_path):
    """The KDC's distributions (legacy HMAC-only and signed) through our own C library."""
    lib = os.path.join(BUILD, "lib")
    exe = tmp_path / "test_kdc_krs"
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{os.path.join(HERE, '..', '..', 'Include')}",
                    "-o", str(exe), os.path.join(HERE, "test_kdc_krs.c"), f"-L{lib}", "-ltdnskrs", f"-Wl,-rpath,{lib}"],
                   check=True, capture_output=True)
    for legacy in [True, False]:
        pub, priv = hpke_keypair()
        node = f"krs-c-{'legacy' if legacy else 'signed'}.example."
        run(kdc["state"], "node", "add", node, "--crypto", "hpke", "--hpke-pubkey", pub.hex(), *(["--legacy"] if legacy else []))
        dist = run_json(kdc["state"], "distribute", "--node", node, "--zone", "example.com.")["distributions"][0]
        d = dist["distribution_id"]
        records = []
        r = chunk_query(kdc["server"], f"{node}{d}.{CZ}")
        records.append(r.answer[0][0].to_digestable())
        first = parse_chunk(records[0])
        assert first["format"] == (1 if legacy else 2)
        meta = json.loads(first["data"]) if legacy else jwt_claims(first["data"].decode("ascii"), signing_key(kdc))
        timestamp = meta["metadata"]["timestamp"] if legacy else meta["iat"]
        for i in range(1, meta["chunk_count"] + 1):
            records.append(chunk_query(kdc["server"], f"{i}.{node}{d}.{CZ}").answer[0][0].to_digestable())
        work = tmp_path / node
        (work / "keys").mkdir(parents=True)
        (work / "node.hpke").write_text(f"# node key\n{priv.hex()}\n")
        os.chmod(work / "node.hpke", 0o600)
        settings = [f"node_id={node}", f"control_zone={CZ}", f"state_dir={work / 'state'}", f"key_dir={work / 'keys'}",
                    f"hpke_private_key={work / 'node.hpke'}"]
        if not legacy:
            settings += [f"kdc_signing_pubkey={os.path.join(kdc['state'], 'kdc.signing.pubkey')}", "require_signature=yes"]
        (work / "krs.conf").write_text("\n".join(settings) + "\n")
        p = subprocess.run([str(exe), str(work / "krs.conf"), str(timestamp + 5), d,
                            *[x.hex() for x in records]], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        tag = kdc["key"]["key_tag"]
        assert f'"key_id":"{tag}"' in p.stdout
        files = sorted(os.listdir(work / "keys"))
        assert files == [f"Kexample.com.+013+{tag:05d}.key", f"Kexample.com.+013+{tag:05d}.private"], files


# --- serve: load, NOTIFY, confirmations ------------------------------------------------------------

def test_1000_pipelined_chunk_queries_on_one_tcp_connection(kdc):
    pub, _ = hpke_keypair()
    node = "load.example."
    run(kdc["state"], "node", "add", node, "--crypto", "hpke", "--hpke-pubkey", pub.hex(), "--legacy")
    d = run_json(kdc["state"], "distribute", "--node", node, "--zone", "example.com.", "--chunk-size", "200")["distributions"][0]
    n_chunks = d["chunk_count"]
    assert n_chunks > 3
    names = [f"{node}{d['distribution_id']}.{CZ}"] + [f"{i}.{node}{d['distribution_id']}.{CZ}" for i in range(1, n_chunks + 1)]
    expected = {}
    for i, name in enumerate(names):
        expected[i] = chunk_query(kdc["server"], name).answer[0][0].to_digestable()
    queries = []
    for k in range(1000):
        q = dns.message.make_query(names[k % len(names)], CHUNK, use_edns=0, payload=4096, want_dnssec=True)
        q.id = k
        q.flags &= ~dns.flags.RD
        w = q.to_wire()
        queries.append(struct.pack(">H", len(w)) + w)
    s = socket.create_connection(("127.0.0.1", kdc["port"]), timeout=20)
    t0 = time.time()
    writer = threading.Thread(target=lambda: s.sendall(b"".join(queries)))
    writer.start()
    buf = b""
    answers = {}
    while len(answers) < 1000:
        while len(buf) < 2 or len(buf) < 2 + struct.unpack(">H", buf[:2])[0]:
            more = s.recv(65536)
            assert more, f"connection closed after {len(answers)} answers"
            buf += more
        (n,) = struct.unpack(">H", buf[:2])
        r = dns.message.from_wire(buf[2:2 + n])
        buf = buf[2 + n:]
        assert r.id not in answers
        answers[r.id] = r
    writer.join()
    s.close()
    elapsed = time.time() - t0
    for k, r in answers.items():
        assert r.rcode() == dns.rcode.NOERROR and len(r.answer) == 1
        assert r.answer[0][0].to_digestable() == expected[k % len(names)], f"answer {k}"
    assert elapsed < 60, f"1000 pipelined queries took {elapsed:.1f} s"


class NotifyListener:
    """A node's NOTIFY endpoint: answers (NOERROR, or `rcode`) and remembers what came."""

    def __init__(self, answer=True, rcode=dns.rcode.NOERROR):
        self.rcode = rcode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.got = []
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while self.running:
            try:
                data, peer = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                m = dns.message.from_wire(data)
            except Exception:  # noqa: BLE001 - a listener must survive garbage
                continue
            self.got.append((time.time(), m, data))
            if self.answer:
                r = dns.message.make_response(m)
                r.flags |= dns.flags.AA
                r.set_rcode(self.rcode)
                self.sock.sendto(r.to_wire(), peer)

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()


def wait_state(kdc, dist_id, wanted, timeout=15):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        for d in run_json(kdc["state"], "status")["distributions"]:
            if d["distribution_id"] == dist_id:
                last = d
                if d["state"] == wanted:
                    return d
        time.sleep(0.2)
    raise AssertionError(f"{dist_id}: state {last and last['state']}, wanted {wanted}")


def confirmation_notify(dist_id, report):
    q = dns.message.Message()
    q.set_opcode(dns.opcode.NOTIFY)
    q.flags |= dns.flags.AA
    q.question.append(dns.rrset.RRset(dns.name.from_text(f"{dist_id}.{CZ}"), 1, CHUNK))
    content = bytes([1]) + json.dumps(report, separators=(",", ":")).encode()
    opt_data = bytes([1]) + struct.pack(">H", 0) + struct.pack(">H", len(content)) + content
    q.use_edns(0, dns.flags.DO, 4096, options=[dns.edns.GenericOption(CHUNK_OPTION, opt_data)])
    return q


def test_notify_then_confirmation_then_failure_report(kdc):
    listener = NotifyListener()
    try:
        pub, _ = hpke_keypair()
        node = "notified.example."
        run(kdc["state"], "node", "add", node, "--crypto", "hpke", "--hpke-pubkey", pub.hex(), "--legacy",
            "--notify", f"127.0.0.1:{listener.port}")
        d1 = run_json(kdc["state"], "distribute", "--node", node, "--zone", "example.com.")["distributions"][0]["distribution_id"]
        wait_state(kdc, d1, "notified")
        got = [m for _, m, _ in listener.got]
        assert got, "a NOTIFY arrived"
        m = got[0]
        assert m.opcode() == dns.opcode.NOTIFY and m.flags & dns.flags.AA
        assert m.question[0].name.to_text() == f"{d1}.{CZ}" and m.question[0].rdtype == CHUNK
        assert m.edns < 0, "the Go KDC's NOTIFY carries no EDNS (legacy node)"
        tag = str(kdc["key"]["key_tag"])
        ok = confirmation_notify(d1, {"successful_keys": [{"zone_name": "example.com.", "key_id": tag}]})
        r = dns.query.udp(ok, "127.0.0.1", port=kdc["port"], timeout=5)
        assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
        assert wait_state(kdc, d1, "confirmed")["confirmed_by"] == "address"
        # A finished distribution is no longer served, to anyone.
        assert chunk_query(kdc["server"], f"{node}{d1}.{CZ}").rcode() == dns.rcode.NXDOMAIN
        assert chunk_query(kdc["server"], f"1.{node}{d1}.{CZ}").rcode() == dns.rcode.NXDOMAIN

        d2 = run_json(kdc["state"], "distribute", "--node", node, "--zone", "example.com.")["distributions"][0]["distribution_id"]
        wait_state(kdc, d2, "notified")
        bad = confirmation_notify(d2, {"failed_keys": [{"zone_name": "example.com.", "key_id": tag, "error": "disk full"}]})
        assert dns.query.udp(bad, "127.0.0.1", port=kdc["port"], timeout=5).rcode() == dns.rcode.NOERROR
        failed = wait_state(kdc, d2, "failed")
        assert "disk full" in failed["reason"]
        status = run_json(kdc["state"], "status", "--node", node)
        assert {d["state"] for d in status["distributions"]} == {"confirmed", "failed"}
    finally:
        listener.close()


def test_unanswered_notify_is_retried_with_backoff(kdc):
    listener = NotifyListener(answer=False)
    try:
        pub, _ = hpke_keypair()
        node = "silent.example."
        run(kdc["state"], "node", "add", node, "--crypto", "hpke", "--hpke-pubkey", pub.hex(),
            "--notify", f"127.0.0.1:{listener.port}")
        d = run_json(kdc["state"], "distribute", "--node", node, "--op", "ping")["distributions"][0]["distribution_id"]
        deadline = time.time() + 15
        while time.time() < deadline and len(listener.got) < 3:
            time.sleep(0.2)
        times = [t for t, _, _ in listener.got]
        assert len(times) >= 3, f"{len(times)} NOTIFYs"
        assert times[2] - times[1] >= times[1] - times[0] - 0.5, "backoff grows"
        # Non-legacy node: the NOTIFY carries the KDC's SIG(0), verifiable with kdc.sig0.key.
        raw = listener.got[0][2]
        check_sig0(raw, open(os.path.join(kdc["state"], "kdc.sig0.key")).read())
        st = [x for x in run_json(kdc["state"], "status")["distributions"] if x["distribution_id"] == d][0]
        assert st["state"] == "pending" and st["notify_attempts"] >= 3
        assert st["last_notify_result"] == "no answer" and "last_notify_at" in st
        created = time.mktime(time.strptime(st["created_at"], "%Y-%m-%dT%H:%M:%SZ"))
        deadline = time.mktime(time.strptime(st["deadline"], "%Y-%m-%dT%H:%M:%SZ"))
        assert deadline - created == 300, "deadline = created_at + distribution_ttl"
    finally:
        listener.close()


def test_notify_answered_refused_is_retried_not_acknowledged(kdc):
    listener = NotifyListener(rcode=dns.rcode.REFUSED)
    try:
        pub, _ = hpke_keypair()
        node = "refusing.example."
        run(kdc["state"], "node", "add", node, "--crypto", "hpke", "--hpke-pubkey", pub.hex(), "--legacy",
            "--notify", f"127.0.0.1:{listener.port}")
        d = run_json(kdc["state"], "distribute", "--node", node, "--op", "ping")["distributions"][0]["distribution_id"]
        deadline = time.time() + 10
        while time.time() < deadline and len(listener.got) < 3:
            time.sleep(0.2)
        assert len(listener.got) >= 3, f"{len(listener.got)} NOTIFYs"
        st = [x for x in run_json(kdc["state"], "status")["distributions"] if x["distribution_id"] == d][0]
        assert st["state"] == "pending" and st["last_notify_result"] == "REFUSED" and "notified_at" not in st
        # Once the node answers NOERROR: notified, and NOTIFYed again until it confirms.
        listener.rcode = dns.rcode.NOERROR
        wait_state(kdc, d, "notified")
        n = len(listener.got)
        deadline = time.time() + 20
        while time.time() < deadline and len(listener.got) == n:
            time.sleep(0.2)
        assert len(listener.got) > n, "a notified distribution is NOTIFYed again"
    finally:
        listener.close()


def test_a_chunk_query_changes_nothing(kdc):
    """Anyone can guess an ID and query it: that must not count as delivery (PROTOCOL §19)."""
    pub, _ = hpke_keypair()
    node = "early.example."
    # No notify address, so serve sends nothing while the ID is queried.
    run(kdc["state"], "node", "add", node, "--crypto", "hpke", "--hpke-pubkey", pub.hex(), "--legacy")
    d = run_json(kdc["state"], "distribute", "--node", node, "--op", "ping")["distributions"][0]["distribution_id"]
    assert chunk_query(kdc["server"], f"{node}{d}.{CZ}").rcode() == dns.rcode.NOERROR
    time.sleep(0.6)
    st = [x for x in run_json(kdc["state"], "status")["distributions"] if x["distribution_id"] == d][0]
    assert st["state"] == "pending" and st["notify_attempts"] == 0


def test_unconfirmed_distribution_fails_at_its_deadline(tmp_path):
    """A KDC with distribution_ttl 3s: a node that never answers → failed with the reason, and
    its CHUNKs are no longer served."""
    state = str(tmp_path / "short-ttl")
    port = free_port()
    run(state, "init", "--control-zone", CZ, "--listen", f"127.0.0.1:{port}", "--distribution-ttl", "3s")
    listener = NotifyListener(answer=False)
    server = Server(state, port)
    try:
        pub, _ = hpke_keypair()
        node = "gone.example."
        run(state, "node", "add", node, "--crypto", "hpke", "--hpke-pubkey", pub.hex(), "--legacy",
            "--notify", f"127.0.0.1:{listener.port}")
        d = run_json(state, "distribute", "--node", node, "--op", "ping")["distributions"][0]["distribution_id"]
        assert chunk_query(server, f"{node}{d}.{CZ}").rcode() == dns.rcode.NOERROR
        failed = wait_state({"state": state}, d, "failed", timeout=15)
        m = re.fullmatch(r"not confirmed by the deadline \((\d+) NOTIFYs?, last: no answer\)", failed["reason"])
        assert m and int(m.group(1)) == failed["notify_attempts"] == len(listener.got) >= 1, failed
        assert chunk_query(server, f"{node}{d}.{CZ}").rcode() == dns.rcode.NXDOMAIN
        n = len(listener.got)
        time.sleep(1.5)
        assert len(listener.got) == n, "no NOTIFY after the deadline"
    finally:
        server.stop()
        listener.close()


def check_sig0(wire, key_line):
    """RFC 2931: SIG RDATA (without signature) ‖ message without the SIG, ARCOUNT − 1."""
    m = dns.message.from_wire(wire)
    sig = [rr for rr in m.additional if rr.rdtype == dns.rdatatype.SIG]
    assert len(sig) == 1
    # Find the SIG RR in the wire: it is last; parse its RDATA boundaries by hand.
    arcount = struct.unpack(">H", wire[10:12])[0]
    rd = sig[0][0]
    signer = rd.signer.to_wire()
    fixed = struct.pack(">HBBIIIH", 0, rd.algorithm, 0, 0, rd.expiration, rd.inception, rd.key_tag) + signer
    rr_len = 1 + 10 + len(fixed) + len(rd.signature)
    unsigned = wire[:10] + struct.pack(">H", arcount - 1) + wire[12:len(wire) - rr_len]
    pub = base64.b64decode(key_line.split("\t")[-1].split(" ", 3)[3].strip())
    ed25519.Ed25519PublicKey.from_public_bytes(pub).verify(rd.signature, fixed + unsigned)


# --- enrollment (PROTOCOL §11, §12) -------------------------------------------------------------

def read_package(path):
    lines = [l.strip() for l in open(path) if l.strip() and not l.startswith("#")]
    return json.loads(base64.b64decode("".join(lines), validate=True))


def sign_sig0(wire, priv, key_tag, signer):
    """Appends an RFC 2931 SIG(0) (class ANY, TTL 0, owner root), as miekg/dns writes it."""
    now = int(time.time())
    fixed = struct.pack(">HBBIIIH", 0, 15, 0, 0, now + 300, now - 60, key_tag) + dns.name.from_text(signer).to_wire()
    signature = priv.sign(fixed + wire)
    arcount = struct.unpack(">H", wire[10:12])[0]
    rdata = fixed + signature
    rr = b"\x00" + struct.pack(">HHIH", 24, 255, 0, len(rdata)) + rdata
    return wire[:10] + struct.pack(">H", arcount + 1) + wire[12:] + rr


class EnrollClient:
    def __init__(self, node):
        self.node = node
        self.hpke_pub, self.hpke_priv = hpke_keypair()
        self.sig0 = ed25519.Ed25519PrivateKey.generate()
        raw = self.sig0.public_key().public_bytes_raw()
        self.key_rdata = struct.pack(">HBB", 256, 3, 15) + raw
        self.key_line = f"{node}\t3600\tIN\tKEY\t256 3 15 {base64.b64encode(raw).decode()}"

    def update(self, package, timestamp=None, capabilities=None, rrtype=CHUNK):
        req = {
            "auth_token": package["token"],
            "hpke_pubkey": self.hpke_pub.hex(),
            "notify_address": "127.0.0.1:15999",
            "sig0_pubkey": self.key_line,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp or time.time())),
        }
        if capabilities is not None:
            req["capabilities"] = capabilities
        pt = json.dumps(req, separators=(",", ":"), sort_keys=True).encode()
        pkr = SUITE.kem.deserialize_public_key(bytes.fromhex(package["kdc_hpke_pubkey"]))
        enc, ctx = SUITE.create_sender_context(pkr)
        ct = enc + ctx.seal(pt)
        chunk = bytes([1]) + struct.pack(">H", 0) + struct.pack(">HHH", 0, 0, len(ct)) + ct
        upd = dns.update.UpdateMessage(package["control_zone"])
        rd = dns.rdata.GenericRdata(dns.rdataclass.IN, rrtype, chunk)
        upd.add(dns.name.from_text("_enroll." + package["control_zone"]), 300, rd)
        upd.use_edns(0, dns.flags.DO, 1232)
        return sign_sig0(upd.to_wire(), self.sig0, rfc4034_key_tag(self.key_rdata), package["control_zone"])

    def send(self, wire, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(10)
        s.sendto(wire, ("127.0.0.1", port))
        data, _ = s.recvfrom(65535)
        s.close()
        r = dns.message.from_wire(data)
        opts = [o for o in r.options if o.otype == CHUNK_OPTION]
        assert len(opts) == 1, "the answer carries the CHUNK option (§11.5)"
        raw = getattr(opts[0], "data", None) or opts[0].to_wire()
        fmt, hlen = raw[0], struct.unpack(">H", raw[1:3])[0]
        (dlen,) = struct.unpack(">H", raw[3 + hlen:5 + hlen])
        body = raw[5 + hlen:5 + hlen + dlen]
        assert fmt == 1 and body[0] == 2, "content type 2: enrollment confirmation"
        return r.rcode(), body[1:]

    def open(self, content, kdc_pub_hex):
        skr = SUITE.kem.deserialize_private_key(self.hpke_priv)
        pks = SUITE.kem.deserialize_public_key(bytes.fromhex(kdc_pub_hex))
        ctx = SUITE.create_recipient_context(content[:32], skr, pks=pks)
        return json.loads(ctx.open(content[32:]))


def test_enrollment_once_then_refused_then_refused_after_window(kdc, tmp_path):
    node = "enrolled.example."
    pkg_path = tmp_path / "enrolled.enroll"
    run(kdc["state"], "enroll", "generate", node, "--out", str(pkg_path))
    assert os.stat(pkg_path).st_mode & 0o777 == 0o600
    package = read_package(pkg_path)
    assert list(package)[:6] == ["token", "node_id", "kdc_hpke_pubkey", "kdc_jose_pubkey", "kdc_enrollment_address", "control_zone"]
    assert package["kdc_enrollment_address"] == f"127.0.0.1:{kdc['port']}" and package["node_id"] == node
    assert package["kdc_signing_pubkey"]["alg"] == "ES256" and package["version"] == "2.0"
    assert package["capabilities"] == ["hpke", "jose"]
    client = EnrollClient(node)

    rcode, _ = client.send(client.update(package), kdc["port"])
    assert rcode == dns.rcode.REFUSED, "not activated yet"

    run(kdc["state"], "enroll", "activate", node, "--window", "5m")
    rcode, content = client.send(client.update(package), kdc["port"])
    assert rcode == dns.rcode.NOERROR
    conf = client.open(content, package["kdc_hpke_pubkey"])
    assert list(conf) == ["node_id", "status", "kdc_hpke_pubkey", "timestamp"]
    assert conf["status"] == "success" and conf["node_id"] == node and conf["kdc_hpke_pubkey"] == package["kdc_hpke_pubkey"]
    st = run_json(kdc["state"], "status", "--node", node)
    assert st["nodes"][0]["source"] == "enrolled" and st["nodes"][0]["hpke_pubkey"] == client.hpke_pub.hex()
    assert st["enrollments"][-1]["state"] == "used"

    before = enrollment_state(kdc)
    rcode, content = client.send(client.update(package), kdc["port"])
    assert rcode == dns.rcode.REFUSED, "a used token is refused"
    err = client.open(content, package["kdc_hpke_pubkey"])
    assert err["status"] == "error" and "already used" in err["error_message"]
    assert enrollment_state(kdc) == before

    run(kdc["state"], "enroll", "generate", node, "--out", str(pkg_path))
    package2 = read_package(pkg_path)
    run(kdc["state"], "enroll", "activate", node, "--window", "2s")
    time.sleep(3.2)
    before = enrollment_state(kdc)
    rcode, _ = client.send(client.update(package2), kdc["port"])
    assert rcode == dns.rcode.REFUSED, "outside its window"
    assert enrollment_state(kdc) == before


def test_enrollment_refuses_bad_sig0_and_stale_timestamp(kdc, tmp_path):
    node = "enroll-bad.example."
    pkg_path = tmp_path / "bad.enroll"
    run(kdc["state"], "enroll", "generate", node, "--out", str(pkg_path))
    run(kdc["state"], "enroll", "activate", node)
    package = read_package(pkg_path)
    client = EnrollClient(node)
    before = enrollment_state(kdc)
    stale = client.update(package, timestamp=time.time() - 3600)
    assert client.send(stale, kdc["port"])[0] == dns.rcode.REFUSED
    wire = bytearray(client.update(package))
    wire[-5] ^= 1  # a signature byte
    assert client.send(bytes(wire), kdc["port"])[0] == dns.rcode.REFUSED
    other = EnrollClient(node)
    forged = client.update(package)
    # Signed by a key other than the one in the request.
    unsigned_len = len(forged) - (1 + 10 + 18 + len(dns.name.from_text(CZ).to_wire()) + 64)
    resigned = sign_sig0(forged[:10] + struct.pack(">H", struct.unpack(">H", forged[10:12])[0] - 1) + forged[12:unsigned_len],
                         other.sig0, rfc4034_key_tag(client.key_rdata), CZ)
    assert client.send(resigned, kdc["port"])[0] == dns.rcode.REFUSED
    assert enrollment_state(kdc) == before
    # The genuine request still works.
    assert client.send(client.update(package), kdc["port"])[0] == dns.rcode.NOERROR


def enroll(kdc, tmp_path, node, **kwargs):
    pkg_path = tmp_path / f"{node}enroll"
    run(kdc["state"], "enroll", "generate", node, "--out", str(pkg_path))
    run(kdc["state"], "enroll", "activate", node)
    package = read_package(pkg_path)
    client = EnrollClient(node)
    rcode, content = client.send(client.update(package, **kwargs), kdc["port"])
    assert rcode == dns.rcode.NOERROR
    assert client.open(content, package["kdc_hpke_pubkey"])["status"] == "success"
    return client, [n for n in run_json(kdc["state"], "status", "--node", node)["nodes"]][0]


def test_enrolled_node_without_capabilities_gets_the_go_format_v1(kdc, tmp_path):
    """§19/§21: a Go KRS announces nothing; HPKE-only ⇒ use_crypto_v2: false ⇒ v1, no JWS, no JWT."""
    node = "go-like.example."
    client, st = enroll(kdc, tmp_path, node, rrtype=CHUNK_LEGACY)
    assert st["legacy"] is True and st["hpke_layout"] == "v1" and st["capabilities"] == []
    dist = run_json(kdc["state"], "distribute", "--node", node, "--zone", "example.com.")["distributions"][0]
    assert dist["signed"] is False and dist["hpke_layout"] == "v1"
    manifest, meta, chunks = fetch(kdc["server"], node, dist["distribution_id"])
    check_manifest(manifest, meta, node, dist["distribution_id"], None, client.hpke_pub)
    ct = base64.b64decode(transport_blob(meta, chunks), validate=True)
    assert ct.count(b".") != 2 or not all(0x21 <= b <= 0x7E for b in ct), "no JWS"
    entries = json.loads(hpke_open(client.hpke_priv, ct[32:]))
    check_roll_key(entries[0], kdc["key"])


def test_enrolled_node_announcing_jws_and_sig0_gets_jwt_and_must_sign(kdc, tmp_path):
    node = "modern.example."
    client, st = enroll(kdc, tmp_path, node, capabilities=["jws-es256", "sig0"])
    assert st["legacy"] is False and st["capabilities"] == ["jws-es256", "sig0"]
    dist = run_json(kdc["state"], "distribute", "--node", node, "--zone", "example.com.")["distributions"][0]
    assert dist["signed"] is True
    _, claims, chunks = fetch(kdc["server"], node, dist["distribution_id"], signing=signing_key(kdc))
    assert claims["receiver_id"] == node and claims["distribution_id"] == dist["distribution_id"]
    entries = json.loads(hpke_open(client.hpke_priv, base64.b64decode(transport_blob(claims, chunks))))
    check_roll_key(entries[0], kdc["key"])
    # An unsigned confirmation from the node's own notify address is refused ...
    tag = str(kdc["key"]["key_tag"])
    report = {"successful_keys": [{"zone_name": "example.com.", "key_id": tag}]}
    unsigned = confirmation_notify(dist["distribution_id"], report)
    r = dns.query.udp(unsigned, "127.0.0.1", port=kdc["port"], timeout=5)
    assert r.rcode() == dns.rcode.REFUSED
    st = [x for x in run_json(kdc["state"], "status")["distributions"] if x["distribution_id"] == dist["distribution_id"]][0]
    assert st["state"] != "confirmed"
    # ... one SIG(0)-signed with its enrolled key is accepted, from anywhere.
    wire = sign_sig0(confirmation_notify(dist["distribution_id"], report).to_wire(), client.sig0,
                     rfc4034_key_tag(client.key_rdata), CZ)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.9", 0))
    s.settimeout(5)
    s.sendto(wire, ("127.0.0.1", kdc["port"]))
    answer = dns.message.from_wire(s.recvfrom(65535)[0])
    s.close()
    assert answer.rcode() == dns.rcode.NOERROR
    assert wait_state(kdc, dist["distribution_id"], "confirmed")["confirmed_by"] == "sig0"


def test_enrollment_accepts_both_chunk_types(kdc, tmp_path):
    for rrtype, node in [(CHUNK, "type-new.example."), (CHUNK_LEGACY, "type-old.example.")]:
        _, st = enroll(kdc, tmp_path, node, rrtype=rrtype)
        assert st["source"] == "enrolled"


def test_legacy_package_and_node_set(kdc, tmp_path):
    pkg = tmp_path / "forced.enroll"
    run(kdc["state"], "enroll", "generate", "forced.example.", "--out", str(pkg), "--legacy")
    package = read_package(pkg)
    assert "kdc_signing_pubkey" not in package and "kdc_sig0_pubkey" not in package
    run(kdc["state"], "enroll", "activate", "forced.example.")
    client = EnrollClient("forced.example.")
    assert client.send(client.update(package, capabilities=["jws-es256", "sig0"]), kdc["port"])[0] == dns.rcode.NOERROR
    node = run_json(kdc["state"], "status", "--node", "forced.example.")["nodes"][0]
    assert node["legacy"] is True and node["hpke_layout"] == "v2", "forced legacy; it has jws-es256, so not v1"
    # --signed for a node that never announced jws-es256: allowed, with a warning on stderr.
    pub, _ = hpke_keypair()
    run(kdc["state"], "node", "add", "switch.example.", "--crypto", "hpke", "--hpke-pubkey", pub.hex(), "--legacy", "--hpke-layout", "v1")
    p = run(kdc["state"], "node", "set", "switch.example.", "--signed")
    assert "warning" in p.stderr and "jws-es256" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    st = run_json(kdc["state"], "status", "--node", "switch.example.")["nodes"][0]
    assert st["legacy"] is False and st["hpke_layout"] == "v2"
    run(kdc["state"], "node", "set", "switch.example.", "--legacy", "--hpke-layout", "v1")
    st = run_json(kdc["state"], "status", "--node", "switch.example.")["nodes"][0]
    assert st["legacy"] is True and st["hpke_layout"] == "v1"


# --- zone export, key import --------------------------------------------------------------------

def test_export_zone_generic_loads_in_named_checkzone(kdc, tmp_path):
    pub, _ = hpke_keypair()
    run(kdc["state"], "node", "add", "export.example.", "--crypto", "hpke", "--hpke-pubkey", pub.hex(), "--legacy")
    d = run_json(kdc["state"], "distribute", "--node", "export.example.", "--zone", "example.com.")["distributions"][0]
    text = run(kdc["state"], "export-zone", "--generic").stdout
    zone = tmp_path / "kdc.example.zone"
    zone.write_text(text)
    manifest_line = [l for l in text.splitlines() if l.startswith(f"export.example.{d['distribution_id']}.")][0]
    owner, ttl, cls, typ, rest = manifest_line.split("\t", 4)
    assert (ttl, cls, typ) == ("300", "IN", "TYPE65288") and rest.startswith("\\# ")
    _, length, hexdata = rest.split(" ")
    served = chunk_query(kdc["server"], owner).answer[0][0].to_digestable()
    assert bytes.fromhex(hexdata) == served and int(length) == len(served)
    checkzone = next((p for p in ["/usr/bin/named-checkzone", "/usr/sbin/named-checkzone"] if os.path.exists(p)), None)
    if checkzone is None:
        pytest.skip("named-checkzone not installed")
    p = subprocess.run([checkzone, CZ, str(zone)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_key_import_from_dnssec_keygen(kdc, tmp_path):
    keygen = next((p for p in ["/usr/sbin/dnssec-keygen", "/usr/bin/dnssec-keygen"] if os.path.exists(p)), None)
    if keygen is None:
        pytest.skip("dnssec-keygen not installed")
    run(kdc["state"], "zone", "add", "imported.example.")
    base = subprocess.run([keygen, "-q", "-K", str(tmp_path), "-a", "ED25519", "imported.example."],
                          capture_output=True, text=True, check=True).stdout.strip()
    key = run_json(kdc["state"], "key", "import", "--zone", "imported.example.", str(tmp_path / f"{base}.private"))
    assert base.endswith(f"+015+{key['key_tag']:05d}") and key["key_type"] == "ZSK" and key["source"] == "imported"
    keyfile = (tmp_path / f"{base}.key").read_text()
    b64 = [l for l in keyfile.splitlines() if not l.startswith(";")][0].split(None, 6)[6].replace(" ", "")
    assert key["dnskey"].endswith(b64)
    again = run(kdc["state"], "key", "import", "--zone", "imported.example.", str(tmp_path / f"{base}.private"), check=False)
    assert again.returncode == 2 and "already has a key" in again.stderr


# --- issue 13: policy, node lifecycle, re-enrollment, several keys, metrics ----------------------
#
# A KDC of its own (policy changes must not reach the tests above). What is checked comes from
# the KDC's answers and files, opened with pyhpke/jwcrypto, not from its own words.

@pytest.fixture(scope="module")
def mig():
    state = os.path.join(WORK, "mig-state")
    port = free_port()
    run(state, "init", "--control-zone", CZ, "--listen", f"127.0.0.1:{port}")
    run(state, "zone", "add", "example.com.")
    ksk = run_json(state, "key", "generate", "--zone", "example.com.", "--algorithm", "13", "--type", "ksk")
    zsk = run_json(state, "key", "generate", "--zone", "example.com.", "--algorithm", "15", "--type", "zsk")
    run(state, "zone", "add", "example.org.")
    csk = run_json(state, "key", "generate", "--zone", "example.org.", "--algorithm", "13", "--type", "csk")
    server = Server(state, port, metrics=free_port())
    yield {"state": state, "server": server, "port": port, "keys": {"ksk": ksk, "zsk": zsk, "csk": csk}}
    server.stop()


def dist_status(kdc, dist_id):
    return [x for x in run_json(kdc["state"], "status")["distributions"] if x["distribution_id"] == dist_id][0]


def event_log(kdc):
    with open(os.path.join(kdc["state"], "kdc.log")) as f:
        return f.read().splitlines()


def fetch_all(kdc, node, dist_id):
    """The manifest and every data chunk of a distribution, as RDATA."""
    records = [chunk_query(kdc["server"], f"{node}{dist_id}.{CZ}").answer[0][0].to_digestable()]
    first = parse_chunk(records[0])
    meta = json.loads(first["data"]) if first["format"] == 1 else jwt_claims(first["data"].decode("ascii"), signing_key(kdc))
    for i in range(1, meta["chunk_count"] + 1):
        records.append(chunk_query(kdc["server"], f"{i}.{node}{dist_id}.{CZ}").answer[0][0].to_digestable())
    return records, meta


def jose_open(key, blob):
    token = jwe.JWE()
    token.deserialize(base64.b64decode(blob, validate=True).decode("ascii"), key=key)
    return json.loads(token.payload)


class JoseEnrollClient(EnrollClient):
    """A node with a JOSE key (and an HPKE one only when `hpke`): the request holds the keys it
    has; it is HPKE-sealed to the KDC when the package offers HPKE, else a JWE to its JOSE key."""

    def __init__(self, node, hpke=False):
        super().__init__(node)
        self.jose = jwk.JWK.generate(kty="EC", crv="P-256")
        self.with_hpke = hpke

    def update(self, package, timestamp=None, capabilities=("jws-es256", "sig0"), rrtype=CHUNK, preferred=None):
        req = {
            "auth_token": package.get("token") or package.get("auth_token"),
            "capabilities": list(capabilities),
            "jose_pubkey": self.jose.export_public(),
            "notify_address": "127.0.0.1:15999",
            "sig0_pubkey": self.key_line,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp or time.time())),
        }
        if self.with_hpke:
            req["hpke_pubkey"] = self.hpke_pub.hex()
        if preferred:
            req["preferred_crypto"] = preferred
        pt = json.dumps(req, separators=(",", ":"), sort_keys=True).encode()
        if package.get("kdc_hpke_pubkey"):
            pkr = SUITE.kem.deserialize_public_key(bytes.fromhex(package["kdc_hpke_pubkey"]))
            enc, ctx = SUITE.create_sender_context(pkr)
            ct = enc + ctx.seal(pt)
        else:
            kdc_jwk = jwk.JWK.from_json(base64.b64decode(package["kdc_jose_pubkey"]))
            t = jwe.JWE(pt, protected={"alg": "ECDH-ES", "enc": "A256GCM"})
            t.add_recipient(kdc_jwk)
            ct = t.serialize(compact=True).encode("ascii")
        chunk = bytes([1]) + struct.pack(">H", 0) + struct.pack(">HHH", 0, 0, len(ct)) + ct
        upd = dns.update.UpdateMessage(package["control_zone"])
        upd.add(dns.name.from_text("_enroll." + package["control_zone"]), 300, dns.rdata.GenericRdata(dns.rdataclass.IN, rrtype, chunk))
        upd.use_edns(0, dns.flags.DO, 1232)
        return sign_sig0(upd.to_wire(), self.sig0, rfc4034_key_tag(self.key_rdata), package["control_zone"])


def new_package(kdc, tmp_path, node, *extra, activate=True):
    path = tmp_path / f"{node}{len(os.listdir(tmp_path))}.enroll"
    run(kdc["state"], "enroll", "generate", node, "--out", str(path), *extra)
    if activate:
        run(kdc["state"], "enroll", "activate", node)
    return read_package(path)


POLICY_REFUSALS = [
    ["policy", "--default-crypto", "jose", "--supported-crypto", "hpke"],
    ["policy", "--supported-crypto", "jose"],
    ["policy", "--supported-crypto", "hpke,rsa"],
    ["policy", "--default-crypto", "aes"],
]


@pytest.mark.parametrize("args", POLICY_REFUSALS, ids=[" ".join(a) for a in POLICY_REFUSALS])
def test_policy_refusal_is_one_line_and_exit_2(tmp_path, args):
    state = str(tmp_path / "s")
    run(state, "init", "--control-zone", CZ, "--listen", "127.0.0.1:15353")
    p = run(state, *args, check=False)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and p.stderr.startswith("tdns-kdc: "), p.stderr
    assert run_json(state, "policy") == {"default_crypto": "hpke", "supported_crypto": ["hpke", "jose"]}


def test_policy_rollback_refuses_jose_registrations_and_keeps_jose_nodes(tmp_path):
    state = str(tmp_path / "s")
    run(state, "init", "--control-zone", CZ, "--listen", "127.0.0.1:15353")
    run(state, "zone", "add", "example.com.")
    run(state, "key", "generate", "--zone", "example.com.", "--algorithm", "13", "--type", "ksk")
    jkey = jwk.JWK.generate(kty="EC", crv="P-256")
    pub, _ = hpke_keypair()
    run(state, "node", "add", "j.example.", "--crypto", "jose", "--jose-pubkey", jkey.export_public())
    run(state, "node", "add", "dual.example.", "--crypto", "hpke", "--hpke-pubkey", pub.hex(), "--jose-pubkey", jkey.export_public())
    p = run(state, "policy", "--supported-crypto", "hpke")
    assert "warning" in p.stderr and "j.example." in p.stderr
    assert run_json(state, "policy") == {"default_crypto": "hpke", "supported_crypto": ["hpke"]}
    assert run_json(state, "status")["policy"] == {"default_crypto": "hpke", "supported_crypto": ["hpke"]}
    with open(os.path.join(state, "kdc.json")) as f:
        before = f.read()
    for args in (["node", "add", "j2.example.", "--crypto", "jose", "--jose-pubkey", jkey.export_public()],
                 ["enroll", "generate", "j3.example.", "--out", str(tmp_path / "p"), "--crypto", "jose"],
                 ["node", "set", "dual.example.", "--crypto", "jose"]):
        p = run(state, *args, check=False)
        assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, (args, p.stderr)
        assert "not supported" in p.stderr
    with open(os.path.join(state, "kdc.json")) as f:
        assert f.read() == before, "refusals change nothing"
    d = run_json(state, "distribute", "--node", "j.example.", "--zone", "example.com.")["distributions"][0]
    assert d["crypto"] == "jose", "an existing JOSE node keeps receiving with JOSE"
    pkg = tmp_path / "h.enroll"
    run(state, "enroll", "generate", "h.example.", "--out", str(pkg))
    package = read_package(pkg)
    assert package["supported_crypto"] == ["hpke"] and package["kdc_jose_pubkey"] == "" and package["default_crypto"] == "hpke"


def test_node_list_show_set(tmp_path):
    state = str(tmp_path / "s")
    run(state, "init", "--control-zone", CZ, "--listen", "127.0.0.1:15353")
    run(state, "zone", "add", "example.com.")
    run(state, "key", "generate", "--zone", "example.com.", "--algorithm", "13", "--type", "ksk")
    jkey = jwk.JWK.generate(kty="EC", crv="P-256")
    pub, priv = hpke_keypair()
    run(state, "node", "add", "h.example.", "--crypto", "hpke", "--hpke-pubkey", pub.hex())
    run(state, "node", "add", "dual.example.", "--crypto", "hpke", "--hpke-pubkey", pub.hex(), "--jose-pubkey", jkey.export_public())
    d = run_json(state, "distribute", "--node", "dual.example.", "--zone", "example.com.")["distributions"][0]
    nodes = run_json(state, "node", "list")["nodes"]
    assert [n["node_id"] for n in nodes] == ["h.example.", "dual.example."]
    assert nodes[1]["keys_on_file"] == ["hpke", "jose"] and nodes[1]["crypto"] == "hpke"
    assert nodes[1]["last_distribution"] == {"distribution_id": d["distribution_id"], "state": "pending"}
    text = run(state, "node", "list").stdout
    assert "dual.example. hpke" in text and "keys hpke,jose" in text
    show = run_json(state, "node", "show", "dual.example.")
    assert show["crypto"] == "hpke" and show["keys_on_file"] == ["hpke", "jose"] and show["state"] == "active"
    assert show["distributions"][0]["distribution_id"] == d["distribution_id"] and show["distributions"][0]["state"] == "pending"
    assert "backend in use: hpke" in run(state, "node", "show", "dual.example.").stdout
    # Switch: a node with the key.
    assert run_json(state, "node", "set", "dual.example.", "--crypto", "jose")["crypto"] == "jose"
    d2 = run_json(state, "distribute", "--node", "dual.example.", "--zone", "example.com.")["distributions"][0]
    assert d2["crypto"] == "jose"
    # Refused: no key for the backend; unknown node.
    for args in (["node", "set", "h.example.", "--crypto", "jose"], ["node", "show", "nobody.example."],
                 ["node", "remove", "nobody.example."], ["node", "set", "h.example.", "--crypto", "rsa"]):
        p = run(state, *args, check=False)
        assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, (args, p.stderr)
    assert run_json(state, "node", "show", "h.example.")["crypto"] == "hpke"
    assert any("Node dual.example. switched from backend hpke to backend: jose" in l
               for l in open(os.path.join(state, "kdc.log")).read().splitlines())


def test_node_remove_stops_everything_for_the_node(mig, tmp_path):
    listener = NotifyListener(answer=False)
    try:
        pub, _ = hpke_keypair()
        node = "retired.example."
        run(mig["state"], "node", "add", node, "--crypto", "hpke", "--hpke-pubkey", pub.hex(), "--legacy",
            "--notify", f"127.0.0.1:{listener.port}")
        d = run_json(mig["state"], "distribute", "--node", node, "--zone", "example.com.")["distributions"][0]["distribution_id"]
        deadline = time.time() + 10
        while time.time() < deadline and not listener.got:
            time.sleep(0.1)
        assert listener.got, "NOTIFYed before the removal"
        assert chunk_query(mig["server"], f"{node}{d}.{CZ}").rcode() == dns.rcode.NOERROR
        new_package(mig, tmp_path, node)
        removed = run_json(mig["state"], "node", "remove", node)
        assert removed["withdrawn_distributions"] == [d] and removed["revoked_tokens"] == 1
        n = len(listener.got)
        for name in (f"{node}{d}.{CZ}", f"1.{node}{d}.{CZ}"):
            assert chunk_query(mig["server"], name).rcode() == dns.rcode.NXDOMAIN, name
        time.sleep(4)  # backoff after 3 attempts is ≤ 4 s
        assert len(listener.got) <= n + 1, "no more NOTIFYs (one may have been on its way)"
        settled = len(listener.got)
        time.sleep(3)
        assert len(listener.got) == settled
        st = dist_status(mig, d)
        assert st["state"] == "failed" and st["reason"] == "withdrawn: node removed"
        enrollments = [e for e in run_json(mig["state"], "status", "--node", node)["enrollments"]]
        assert enrollments and all(e["state"] == "revoked" for e in enrollments)
        p = run(mig["state"], "enroll", "activate", node, check=False)
        assert p.returncode == 2
        assert run_json(mig["state"], "node", "show", node)["state"] == "removed"
        log = event_log(mig)
        assert any(f"Node {node} removed: 1 live distribution withdrawn, 1 enrollment token revoked" in l for l in log)
        assert any(f"Distribution {d} withdrawn for {node}: node removed" in l for l in log)
    finally:
        listener.close()


def test_multi_key_distribution_counts_and_go_format_path(mig, tmp_path):
    """--zone without --key: KSK and ZSK in one distribution; --all-zones: every zone's keys.
    The Format 1 manifest counts them; the entries open with the node's key and install
    through libtdnskrs (the Go-format path, PROTOCOL §10)."""
    pub, priv = hpke_keypair()
    jkey = jwk.JWK.generate(kty="EC", crv="P-256")
    run(mig["state"], "node", "add", "multi-h.example.", "--crypto", "hpke", "--hpke-pubkey", pub.hex(), "--legacy")
    run(mig["state"], "node", "add", "multi-j.example.", "--crypto", "jose", "--jose-pubkey", jkey.export_public())
    keys = mig["keys"]
    for node in ("multi-h.example.", "multi-j.example."):
        d = run_json(mig["state"], "distribute", "--node", node, "--zone", "example.com.")["distributions"]
        assert len(d) == 1 and d[0]["key_count"] == 2 and d[0]["zone_count"] == 1
        records, meta = fetch_all(mig, node, d[0]["distribution_id"])
        md = meta["metadata"] if "metadata" in meta else meta
        assert (md["key_count"], md["zone_count"], md["operation_count"]) == (2, 1, 2)
        blob = transport_blob(meta, [parse_chunk(r)["data"] for r in records[1:]])
        if node == "multi-h.example.":
            entries = json.loads(hpke_open(priv, base64.b64decode(blob, validate=True)))
        else:
            entries = jose_open(jkey, blob)
        assert [e["key_type"] for e in entries] == ["KSK", "ZSK"]
        check_roll_key(entries[0], keys["ksk"])
        check_roll_key(entries[1], keys["zsk"])
    d = run_json(mig["state"], "distribute", "--node", "multi-h.example.", "--all-zones")["distributions"]
    assert len(d) == 1 and d[0]["key_count"] == 3 and d[0]["zone_count"] == 2
    dist_id = d[0]["distribution_id"]
    records, meta = fetch_all(mig, "multi-h.example.", dist_id)
    assert (meta["metadata"]["key_count"], meta["metadata"]["zone_count"], meta["metadata"]["operation_count"]) == (3, 2, 3)
    entries = json.loads(hpke_open(priv, base64.b64decode(transport_blob(meta, [parse_chunk(r)["data"] for r in records[1:]]))))
    assert [(e["zone_name"], e["key_id"]) for e in entries] == [
        ("example.com.", str(keys["ksk"]["key_tag"])), ("example.com.", str(keys["zsk"]["key_tag"])),
        ("example.org.", str(keys["csk"]["key_tag"]))]
    check_roll_key(entries[2], keys["csk"])
    # --key keeps its meaning: one key.
    one = run_json(mig["state"], "distribute", "--node", "multi-h.example.", "--zone", "example.com.", "--key", str(keys["zsk"]["key_tag"]))
    assert one["distributions"][0]["key_count"] == 1 and one["distributions"][0]["key_tag"] == keys["zsk"]["key_tag"]
    # The multi-zone legacy distribution through libtdnskrs: all three keys installed.
    lib = os.path.join(BUILD, "lib")
    exe = tmp_path / "test_kdc_krs"
    subprocess.run([os.environ.get("CC", "cc"), "-std=c11", "-Wall", "-Wextra", "-Werror",
                    f"-I{os.path.join(HERE, '..', '..', 'Include')}", "-o", str(exe), os.path.join(HERE, "test_kdc_krs.c"),
                    f"-L{lib}", "-ltdnskrs", f"-Wl,-rpath,{lib}"], check=True, capture_output=True)
    work = tmp_path / "krs"
    (work / "keys").mkdir(parents=True)
    (work / "node.hpke").write_text(f"{priv.hex()}\n")
    os.chmod(work / "node.hpke", 0o600)
    (work / "krs.conf").write_text("\n".join([f"node_id=multi-h.example.", f"control_zone={CZ}", f"state_dir={work / 'state'}",
                                              f"key_dir={work / 'keys'}", f"hpke_private_key={work / 'node.hpke'}"]) + "\n")
    p = subprocess.run([str(exe), str(work / "krs.conf"), str(meta["metadata"]["timestamp"] + 5), dist_id, *[r.hex() for r in records]],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    for k in ("ksk", "zsk", "csk"):
        assert f'"key_id":"{keys[k]["key_tag"]}"' in p.stdout, k
    assert len([f for f in os.listdir(work / "keys") if f.endswith(".private")]) == 3
    # delete_key of a zone with two keys needs --key (exit 2, one line).
    p = run(mig["state"], "distribute", "--node", "multi-h.example.", "--zone", "example.com.", "--op", "delete_key", check=False)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1


def test_reenrollment_hpke_to_jose_replaces_keys_and_remakes_live_distributions(mig, tmp_path):
    node = "migrating.example."
    first = EnrollClient(node)
    pkg = new_package(mig, tmp_path, node)
    assert pkg["supported_crypto"] == ["hpke", "jose"] and pkg["default_crypto"] == "hpke" and "reenroll" not in pkg
    rcode, content = first.send(first.update(pkg, capabilities=["jws-es256", "sig0"]), mig["port"])
    assert rcode == dns.rcode.NOERROR and first.open(content, pkg["kdc_hpke_pubkey"])["status"] == "success"
    assert run_json(mig["state"], "node", "show", node)["crypto"] == "hpke"
    old = run_json(mig["state"], "distribute", "--node", node, "--zone", "example.com.")["distributions"][0]["distribution_id"]
    assert chunk_query(mig["server"], f"{node}{old}.{CZ}").rcode() == dns.rcode.NOERROR

    # Re-enrollment package, JOSE only: the node re-enrolls with a JOSE key and a new SIG(0) key.
    re = new_package(mig, tmp_path, node, "--crypto", "jose")
    assert re["reenroll"] is True and re["supported_crypto"] == ["jose"] and "default_crypto" not in re
    assert re["kdc_hpke_pubkey"] == ""
    second = JoseEnrollClient(node)
    rcode, content = second.send(second.update(re), mig["port"])
    assert rcode == dns.rcode.NOERROR
    token = jwe.JWE()
    token.deserialize(content.decode("ascii"), key=second.jose)
    assert json.loads(token.payload)["status"] == "success"

    show = run_json(mig["state"], "node", "show", node)
    assert show["crypto"] == "jose" and show["keys_on_file"] == ["jose", "sig0"] and "reenrolled_at" in show
    assert json.loads(show["jose_pubkey"])["x"] == json.loads(second.jose.export_public())["x"]
    assert show["sig0_pubkey"].split()[-1] == second.key_line.split()[-1]
    st = dist_status(mig, old)
    assert st["state"] == "failed" and st["reason"].startswith("superseded by ")
    new = st["reason"].split()[-1]
    assert new != old and st["remade_as"] == new
    nd = dist_status(mig, new)
    assert nd["crypto"] == "jose" and nd["remade_from"] == old and nd["key_count"] == 2
    assert chunk_query(mig["server"], f"{node}{old}.{CZ}").rcode() == dns.rcode.NXDOMAIN
    records, claims = fetch_all(mig, node, new)
    entries = jose_open(second.jose, transport_blob(claims, [parse_chunk(r)["data"] for r in records[1:]]))
    check_roll_key(entries[0], mig["keys"]["ksk"])
    assert f"superseded by {new}" in run(mig["state"], "status").stdout
    log = event_log(mig)
    assert any(l.endswith(f"info: Node {node} enrolled with backend: hpke") for l in log)
    assert any(f"Node {node} re-enrolled with backend: jose" in l for l in log)
    assert any(l.endswith(f"info: Distribution {new} created for {node} using jose") for l in log)
    assert any(l.endswith(f"info: Distribution {old} created for {node} using hpke") for l in log)
    # A confirmation of the superseded one changes nothing.
    late = confirmation_notify(old, {"successful_keys": [{"zone_name": "example.com.", "key_id": str(mig["keys"]["ksk"]["key_tag"])}]})
    wire = sign_sig0(late.to_wire(), second.sig0, rfc4034_key_tag(second.key_rdata), CZ)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.sendto(wire, ("127.0.0.1", mig["port"]))
    s.recvfrom(65535)
    s.close()
    assert dist_status(mig, old)["state"] == "failed"


def test_failed_or_expired_reenrollment_changes_nothing(mig, tmp_path):
    node = "steady.example."
    first = EnrollClient(node)
    pkg = new_package(mig, tmp_path, node)
    assert first.send(first.update(pkg, capabilities=["jws-es256", "sig0"]), mig["port"])[0] == dns.rcode.NOERROR
    live = run_json(mig["state"], "distribute", "--node", node, "--zone", "example.org.")["distributions"][0]["distribution_id"]
    before = run_json(mig["state"], "node", "show", node)
    before.pop("enrollment", None)

    def unchanged():
        now = run_json(mig["state"], "node", "show", node)
        now.pop("enrollment", None)
        assert {k: now[k] for k in ("crypto", "hpke_pubkey", "sig0_pubkey", "keys_on_file")} == \
               {k: before[k] for k in ("crypto", "hpke_pubkey", "sig0_pubkey", "keys_on_file")}
        assert dist_status(mig, live)["state"] != "failed"
        assert chunk_query(mig["server"], f"{node}{live}.{CZ}").rcode() == dns.rcode.NOERROR

    # Signed by a key other than the one it enrolls: refused.
    re = new_package(mig, tmp_path, node, "--crypto", "jose")
    second = JoseEnrollClient(node)
    wire = bytearray(second.update(re))
    wire[-5] ^= 1
    assert second.send(bytes(wire), mig["port"])[0] == dns.rcode.REFUSED
    unchanged()
    # Expired (a 1 s window): refused.
    run(mig["state"], "enroll", "activate", node, "--window", "1s")
    time.sleep(2.2)
    assert second.send(second.update(re), mig["port"])[0] == dns.rcode.REFUSED
    unchanged()
    assert run_json(mig["state"], "node", "show", node)["enrollment"]["state"] == "expired"


def test_backend_mismatch_report_fails_the_distribution_with_its_reason(mig):
    pub, _ = hpke_keypair()
    node = "mismatch.example."
    run(mig["state"], "node", "add", node, "--crypto", "hpke", "--hpke-pubkey", pub.hex(), "--legacy", "--notify", "127.0.0.1:9")
    d = run_json(mig["state"], "distribute", "--node", node, "--zone", "example.com.")["distributions"][0]["distribution_id"]
    reason = "backend mismatch: jose node received an hpke distribution"
    report = confirmation_notify(d, {"failed_keys": [{"zone_name": "", "key_id": "*", "error": reason}]})
    assert dns.query.udp(report, "127.0.0.1", port=mig["port"], timeout=5).rcode() == dns.rcode.NOERROR
    st = wait_state(mig, d, "failed")
    assert st["reason"] == reason
    assert reason in run(mig["state"], "node", "show", node).stdout
    assert any(f"Distribution {d} failed for {node} (backend: hpke): {reason}" in l for l in event_log(mig))


def test_seed_format_package_and_enrollment(mig, tmp_path):
    node = "seedfmt.example."
    path = tmp_path / "seed.enroll"
    run(mig["state"], "enroll", "generate", node, "--out", str(path), "--format", "seed")
    pkg = read_package(path)
    assert list(pkg) == ["version", "crypto", "auth_token", "kdc_encryption_key", "kdc_signing_key", "kdc_address", "kdc_port",
                         "control_zone", "valid_until", "capabilities"]
    assert pkg["version"] == "2.0" and pkg["crypto"] == "hpke" and pkg["capabilities"] == ["hpke", "jose"]
    assert pkg["kdc_address"] == "127.0.0.1" and pkg["kdc_port"] == mig["port"] and pkg["control_zone"] == CZ
    kdc_hpke = base64.b64decode(pkg["kdc_encryption_key"], validate=True)
    assert kdc_hpke.hex() == open(os.path.join(mig["state"], "kdc.hpke.pubkey")).read().split()[-1]
    assert jwk.JWK(**pkg["kdc_signing_key"]).thumbprint() == signing_key(mig).thumbprint()
    assert "node_id" not in pkg and "kdc_sig0_pubkey" not in pkg
    jpath = tmp_path / "seedj.enroll"
    run(mig["state"], "enroll", "generate", "seedj.example.", "--out", str(jpath), "--format", "seed", "--crypto", "jose")
    jpkg = read_package(jpath)
    assert jpkg["crypto"] == "jose" and jpkg["kdc_encryption_key"]["kty"] == "EC" and jpkg["capabilities"] == ["jose"]
    assert jwk.JWK(**jpkg["kdc_encryption_key"]).thumbprint() == \
        jwk.JWK.from_json(open(os.path.join(mig["state"], "kdc.jose.pubkey")).read()).thumbprint()
    # The token enrolls like a Go-format one.
    run(mig["state"], "enroll", "activate", node)
    client = EnrollClient(node)
    go_view = {"token": pkg["auth_token"], "kdc_hpke_pubkey": kdc_hpke.hex(), "control_zone": pkg["control_zone"]}
    rcode, content = client.send(client.update(go_view, capabilities=["jws-es256", "sig0"]), mig["port"])
    assert rcode == dns.rcode.NOERROR and client.open(content, kdc_hpke.hex())["status"] == "success"
    assert any(l.endswith(f"info: Node {node} enrolled with backend: hpke") for l in event_log(mig))


def test_metrics_match_what_happened(mig):
    """Runs last in this group: every count in status --json metrics against the distributions
    and nodes the KDC lists (each a separate record, so the counters are checked, not echoed)."""
    st = run_json(mig["state"], "status")
    m = st["metrics"]
    for b in ("hpke", "jose"):
        ds = [d for d in st["distributions"] if d["crypto"] == b]
        c = m["distributions"][b]
        assert c["sent"] == len(ds), b
        assert c["confirmed"] == len([d for d in ds if d["state"] == "confirmed"]), b
        assert c["failed"] == len([d for d in ds if d["state"] == "failed" and not d.get("withdrawn")]), b
        assert c["withdrawn"] == len([d for d in ds if d.get("withdrawn")]), b
        lat = m["confirmation_latency_ms"][b]
        assert set(lat) >= {"median", "p95"}
    # Enrollments: migrating (hpke, then jose), steady (hpke), seedfmt (hpke).
    assert m["enrollments"] == {"hpke": 3, "jose": 1}
    assert m["reenrollments"]["jose"] == 1
    assert m["distributions"]["hpke"]["failed"] >= 1 and m["distributions"]["hpke"]["withdrawn"] >= 2


# --- issue 15: Prometheus metrics (serve --metrics) -------------------------------------------------

sys.path.insert(0, os.path.join(HERE, "..", "support"))
import metrics_http  # noqa: E402
import promtext  # noqa: E402


def metrics_equal_status(st, p):
    """Every value of the exposition against `status --json` (metrics, nodes)."""
    m, v = st["metrics"], lambda name, **l: promtext.value(p, name, **l)
    assert v("tdns_kdc_build_info", version="0.2.0") == 1
    active = len([n for n in st["nodes"] if n["state"] == "active"])
    assert v("tdns_kdc_nodes", state="active") == active
    assert v("tdns_kdc_nodes", state="removed") == len(st["nodes"]) - active
    for b in ("hpke", "jose"):
        assert v("tdns_kdc_enrollments_total", backend=b) == m["enrollments"][b], b
        assert v("tdns_kdc_reenrollments_total", backend=b) == m["reenrollments"][b], b
        d = m["distributions"][b]
        assert v("tdns_kdc_distributions_sent_total", backend=b) == d["sent"], b
        for outcome in ("live", "confirmed", "failed", "withdrawn"):
            assert v("tdns_kdc_distributions", backend=b, outcome=outcome) == d[outcome], (b, outcome)
        lat = m["confirmation_latency_ms"][b]
        assert v("tdns_kdc_confirmation_latency_samples", backend=b) == lat["samples"], b
        for q, key in (("0.5", "median"), ("0.95", "p95")):
            got = v("tdns_kdc_confirmation_latency_seconds", backend=b, quantile=q)
            assert (got is None and lat[key] is None) or abs(got * 1000 - lat[key]) < 1e-6, (b, q, got, lat[key])
    # Nothing else: every series is one of those checked above.
    names = {n for n, _ in p["samples"]}
    assert names == {"tdns_kdc_build_info", "tdns_kdc_nodes", "tdns_kdc_enrollments_total", "tdns_kdc_reenrollments_total",
                     "tdns_kdc_distributions_sent_total", "tdns_kdc_distributions", "tdns_kdc_confirmation_latency_samples",
                     "tdns_kdc_confirmation_latency_seconds"} - ({"tdns_kdc_confirmation_latency_seconds"}
                                                                  if not any(m["confirmation_latency_ms"][b]["samples"] for b in ("hpke", "jose")) else set()), names


def test_prometheus_metrics_equal_status_json(mig):
    """After the whole migration group: a strict scrape of serve --metrics equals status --json
    taken between two identical scrapes (so at the same moment)."""
    port = mig["server"].metrics
    for _ in range(5):
        before = metrics_http.scrape(port)
        st = run_json(mig["state"], "status")
        if metrics_http.scrape(port) == before:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("the metrics kept changing")
    p = promtext.parse(before)
    assert any(st["metrics"]["distributions"][b]["sent"] for b in ("hpke", "jose")), "the group made distributions"
    metrics_equal_status(st, p)
    assert "tdns_kdc_distributions_sent_total" in before and "# TYPE tdns_kdc_enrollments_total counter" in before


def test_prometheus_metrics_follow_a_change(mig, tmp_path):
    """A change made by another process (node add + distribute) shows in the next scrape."""
    port = mig["server"].metrics
    before = promtext.parse(metrics_http.scrape(port))
    pub, _ = hpke_keypair()
    node = "scraped.example."
    run(mig["state"], "node", "add", node, "--crypto", "hpke", "--hpke-pubkey", pub.hex())
    run_json(mig["state"], "distribute", "--node", node, "--zone", "example.com.")
    after = promtext.parse(metrics_http.scrape(port))
    sent = lambda p: promtext.value(p, "tdns_kdc_distributions_sent_total", backend="hpke")
    assert sent(after) == sent(before) + 1
    assert promtext.value(after, "tdns_kdc_nodes", state="active") == promtext.value(before, "tdns_kdc_nodes", state="active") + 1
    metrics_equal_status(run_json(mig["state"], "status"), after)


@pytest.mark.parametrize("name,check", metrics_http.CHECKS, ids=[n for n, _ in metrics_http.CHECKS])
def test_prometheus_endpoint_behaviour(mig, name, check):
    before = chunk_query(mig["server"], f"nothing.{CZ}").rcode()
    check(mig["server"].metrics)
    # The DNS side answers as before.
    assert chunk_query(mig["server"], f"nothing.{CZ}").rcode() == before


def test_metrics_off_by_default_and_bad_address_refused(kdc, tmp_path):
    p = subprocess.run([KDC, "serve", "--state", kdc["state"], "--metrics", "localhost:9"], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "--metrics" in p.stderr and "IP:port" in p.stderr, p.stderr
    with open(kdc["server"].log.name) as f:
        assert "serving metrics" not in f.read()


PROM_GOOD = '# HELP a_total x\n# TYPE a_total counter\na_total{b="q\\"\\\\\\n"} 3\n# HELP g y\n# TYPE g gauge\ng NaN\n'
PROM_BAD = {
    "no final newline": PROM_GOOD[:-1],
    "gauge named _total": PROM_GOOD.replace("a_total counter", "a_total gauge"),
    "family not contiguous": PROM_GOOD + "a_total 4\n",
    "unknown escape": PROM_GOOD.replace('\\"', "\\t"),
    "no HELP": "# TYPE x gauge\nx 1\n",
    "series twice": "# HELP x h\n# TYPE x gauge\nx 1\nx 1\n",
    "label not snake_case": '# HELP x h\n# TYPE x gauge\nx{A="1"} 1\n',
    "milliseconds unit": "# HELP x_ms h\n# TYPE x_ms gauge\nx_ms 1\n",
    "blank line": "# HELP x h\n# TYPE x gauge\nx 1\n\n",
    "bad value": "# HELP x h\n# TYPE x gauge\nx one\n",
    "TYPE without samples": "# HELP x h\n# TYPE x gauge\n",
    "truncated labels": '# HELP x h\n# TYPE x gauge\nx{a="1\n',
    "counter without _total": "# HELP x h\n# TYPE x counter\nx 1\n",
    "_info not 1": '# HELP x_info h\n# TYPE x_info gauge\nx_info{v="1"} 2\n',
}


@pytest.mark.parametrize("what", PROM_BAD, ids=list(PROM_BAD))
def test_strict_exposition_parser_rejects(what):
    """The parser standing in for promtool accepts well-formed text and fails on each defect."""
    p = promtext.parse(PROM_GOOD)
    assert promtext.value(p, "a_total", b='q"\\\n') == 3
    with pytest.raises(ValueError):
        promtext.parse(PROM_BAD[what])
