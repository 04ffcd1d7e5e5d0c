"""Interop of libtdnskrs' crypto backends with implementations nobody here wrote.

libtdnskrs is called through ctypes exactly as a C host would: crypto_get_backend(), the
function pointers of crypto_backend_t, krs_free(). Peers:

  * pyhpke 0.6.5 and cryptography's hazmat.primitives.hpke (when present) for the "hpke"
    backend: RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM, empty
    info and AAD;
  * jwcrypto 1.6.1 and the Debian `jose` CLI (latchset) for the "jose" backend: compact JWE,
    ECDH-ES (direct) + A256GCM, P-256 keys exchanged as JWK JSON.

Run by Tests/interop/run.sh (env TDNSKRS_BUILD, PYTHON). Assertion messages name sizes and
return codes only: key material and plaintexts are never printed (run with --assert=plain).
"""

import base64
import ctypes
import json
import os
import shutil
import subprocess
import tempfile
import weakref

import pytest

# --- the library ------------------------------------------------------------------------------

BUILD = os.environ.get("TDNSKRS_BUILD") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build")
LIBPATH = os.path.join(os.path.abspath(BUILD), "lib", "libtdnskrs.so")

KRS_OK, KRS_ERROR, KRS_ENOMEM, KRS_EINVAL, KRS_ECRYPTO = 0, -1, -2, -3, -4
KRS_EDNS, KRS_EKEYTYPE, KRS_EMALFORMED, KRS_ETOOBIG, KRS_EPOLICY = -5, -6, -7, -8, -9
RCNAMES = {0: "KRS_OK", -1: "KRS_ERROR", -2: "KRS_ENOMEM", -3: "KRS_EINVAL", -4: "KRS_ECRYPTO",
           -5: "KRS_EDNS", -6: "KRS_EKEYTYPE", -7: "KRS_EMALFORMED", -8: "KRS_ETOOBIG",
           -9: "KRS_EPOLICY"}

VP = ctypes.c_void_p
SZ = ctypes.c_size_t
PVP = ctypes.POINTER(ctypes.c_void_p)
PSZ = ctypes.POINTER(ctypes.c_size_t)


class CryptoBackend(ctypes.Structure):
    """struct crypto_backend from Include/tdnskrs/crypto.h, member for member."""
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("generate_keypair", ctypes.CFUNCTYPE(ctypes.c_int, PVP, PVP)),
        ("parse_public_key", ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, SZ, PVP)),
        ("parse_private_key", ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, SZ, PVP)),
        ("encrypt", ctypes.CFUNCTYPE(ctypes.c_int, VP, ctypes.c_char_p, SZ, PVP, PSZ)),
        ("decrypt", ctypes.CFUNCTYPE(ctypes.c_int, VP, ctypes.c_char_p, SZ, PVP, PSZ)),
        ("free_public_key", ctypes.CFUNCTYPE(None, VP)),
        ("free_private_key", ctypes.CFUNCTYPE(None, VP)),
        ("serialize_public_key", ctypes.CFUNCTYPE(ctypes.c_int, VP, PVP, PSZ)),
        ("serialize_private_key", ctypes.CFUNCTYPE(ctypes.c_int, VP, PVP, PSZ)),
    ]


class KrsError(Exception):
    def __init__(self, what, rc):
        super().__init__(f"{what} returned {RCNAMES.get(rc, 'unknown code')} ({rc})")
        self.rc = rc


class Key:
    """A key handle; released with the backend's free function when collected."""

    def __init__(self, backend, handle, private):
        self.handle = handle
        self.private = private
        free = backend.b.free_private_key if private else backend.b.free_public_key
        self._fin = weakref.finalize(self, free, handle)

    def free(self):
        self._fin()


class Backend:
    def __init__(self, lib, name):
        self.lib = lib
        ptr = lib.crypto_get_backend(name.encode())
        if not ptr:
            raise KrsError(f'crypto_get_backend("{name}")', -3)
        self.b = ptr.contents
        self.name = name

    def _take(self, ptr, n):
        data = ctypes.string_at(ptr, n)
        self.lib.krs_free(ptr)
        return data

    def generate(self):
        pub, priv = VP(), VP()
        # generate_keypair(void **priv_key, void **pub_key): the design's order, private first.
        rc = self.b.generate_keypair(ctypes.byref(priv), ctypes.byref(pub))
        if rc != KRS_OK:
            raise KrsError(f"{self.name}.generate_keypair", rc)
        return Key(self, pub.value, False), Key(self, priv.value, True)

    def parse_public(self, text):
        k = VP()
        rc = self.b.parse_public_key(text, len(text), ctypes.byref(k))
        if rc != KRS_OK:
            assert not k.value, "failed parse_public_key left a handle in the out-param"
            raise KrsError(f"{self.name}.parse_public_key", rc)
        return Key(self, k.value, False)

    def parse_private(self, text):
        k = VP()
        rc = self.b.parse_private_key(text, len(text), ctypes.byref(k))
        if rc != KRS_OK:
            assert not k.value, "failed parse_private_key left a handle in the out-param"
            raise KrsError(f"{self.name}.parse_private_key", rc)
        return Key(self, k.value, True)

    def _serialize(self, fn, what, key):
        out, n = VP(), SZ()
        rc = fn(key.handle, ctypes.byref(out), ctypes.byref(n))
        if rc != KRS_OK:
            raise KrsError(f"{self.name}.{what}", rc)
        return self._take(out.value, n.value)

    def serialize_public(self, key):
        return self._serialize(self.b.serialize_public_key, "serialize_public_key", key)

    def serialize_private(self, key):
        return self._serialize(self.b.serialize_private_key, "serialize_private_key", key)

    def encrypt(self, pub, pt):
        ct, n = VP(), SZ()
        rc = self.b.encrypt(pub.handle, pt, len(pt), ctypes.byref(ct), ctypes.byref(n))
        if rc != KRS_OK:
            raise KrsError(f"{self.name}.encrypt", rc)
        return self._take(ct.value, n.value)

    def decrypt_rc(self, priv, ct):
        """(rc, plaintext or None); checks the out-param contract on failure."""
        pt, n = VP(), SZ()
        rc = self.b.decrypt(priv.handle, ct, len(ct), ctypes.byref(pt), ctypes.byref(n))
        if rc != KRS_OK:
            assert not pt.value and n.value == 0, "failed decrypt left out-params set"
            return rc, None
        assert pt.value, "decrypt returned KRS_OK with a NULL buffer"
        return rc, self._take(pt.value, n.value)

    def decrypt(self, priv, ct):
        rc, pt = self.decrypt_rc(priv, ct)
        if rc != KRS_OK:
            raise KrsError(f"{self.name}.decrypt", rc)
        return pt


@pytest.fixture(scope="session")
def lib():
    lib = ctypes.CDLL(LIBPATH)
    lib.crypto_get_backend.restype = ctypes.POINTER(CryptoBackend)
    lib.crypto_get_backend.argtypes = [ctypes.c_char_p]
    lib.krs_free.restype = None
    lib.krs_free.argtypes = [ctypes.c_void_p]
    return lib


@pytest.fixture(scope="session")
def hpke(lib):
    return Backend(lib, "hpke")


@pytest.fixture(scope="session")
def jose(lib):
    return Backend(lib, "jose")


def plaintext(n):
    return os.urandom(n)


def same(got, want, what):
    if got != want:
        raise AssertionError(f"{what}: plaintext differs (got {len(got)} bytes, want {len(want)})")


def expect_rc(fn, want, what):
    try:
        fn()
    except KrsError as e:
        if e.rc != want:
            raise AssertionError(f"{what}: got {RCNAMES.get(e.rc, e.rc)} ({e.rc}), want "
                                 f"{RCNAMES[want]} ({want})") from None
        return
    raise AssertionError(f"{what}: succeeded, want {RCNAMES[want]} ({want})")


SIZES = [0, 1, 100, 10000]

# --- the Go vectors (Tests/Vectors, made by tdns-transport v2/crypto with circl and go-jose) -----

VECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Vectors")


def _go_vectors(backend):
    with open(os.path.join(VECTORS, f"{backend}.json")) as f:
        doc = json.load(f)
    pts = {p["id"]: base64.b64decode(p["b64"]) for p in doc["plaintexts"]}
    keys = {k["name"]: k for k in doc["keys"]}
    cases = [(v, pts[v["plaintext"]], keys[v["recipient"]], False) for v in doc["vectors"]]
    cases += [(v, None, keys[v["recipient"]], True) for v in doc["negative"]]
    return [pytest.param(backend, *c, id=c[0]["id"]) for c in cases]


@pytest.mark.parametrize("backend,vec,pt,key,negative", _go_vectors("hpke") + _go_vectors("jose"))
def test_go_vector(lib, backend, vec, pt, key, negative):
    b = Backend(lib, backend)
    priv = b.parse_private((key["private_key_hex"] if backend == "hpke" else key["private_jwk"]).encode())
    ct = base64.b64decode(vec["ciphertext_b64"])
    assert len(ct) == vec["ciphertext_len"], "vector file inconsistent"
    if negative:
        rc, _ = b.decrypt_rc(priv, ct)
        assert rc == KRS_ECRYPTO, f"{vec['id']}: got {RCNAMES.get(rc, rc)} ({rc}), want KRS_ECRYPTO"
        return
    same(b.decrypt(priv, ct), pt, vec["id"])


# --- HPKE: pyhpke ------------------------------------------------------------------------------

from pyhpke import AEADId, CipherSuite, KDFId, KEMId  # noqa: E402

SUITE = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES256_GCM)


def pyhpke_seal(pub_raw, pt, suite=SUITE, info=b"", aad=b""):
    pkr = suite.kem.deserialize_public_key(pub_raw)
    enc, ctx = suite.create_sender_context(pkr, info=info)
    return enc + ctx.seal(pt, aad=aad)


def pyhpke_open(priv_raw, ct):
    skr = SUITE.kem.deserialize_private_key(priv_raw)
    ctx = SUITE.create_recipient_context(ct[:32], skr)
    return ctx.open(ct[32:])


def pyhpke_keypair():
    kp = SUITE.kem.derive_key_pair(os.urandom(32))
    return kp.public_key.to_public_bytes(), kp.private_key.to_private_bytes()


@pytest.mark.parametrize("size", SIZES)
def test_pyhpke_seals_to_our_key(hpke, size):
    pub, priv = hpke.generate()
    hexpub = hpke.serialize_public(pub)
    assert len(hexpub) == 64 and hexpub == hexpub.lower(), "public key is not 64 lowercase hex"
    pt = plaintext(size)
    ct = pyhpke_seal(bytes.fromhex(hexpub.decode()), pt)
    same(hpke.decrypt(priv, ct), pt, f"pyhpke seal -> libtdnskrs decrypt, {size} bytes")


@pytest.mark.parametrize("size", SIZES)
def test_our_encrypt_opens_in_pyhpke(hpke, size):
    pub_raw, priv_raw = pyhpke_keypair()
    pub = hpke.parse_public(pub_raw.hex().encode())
    pt = plaintext(size)
    ct = hpke.encrypt(pub, pt)
    assert len(ct) == 32 + size + 16, f"ciphertext length {len(ct)} != 32 + {size} + 16"
    same(pyhpke_open(priv_raw, ct), pt, f"libtdnskrs encrypt -> pyhpke open, {size} bytes")


def test_pyhpke_raw_public_key_parses(hpke):
    pub_raw, priv_raw = pyhpke_keypair()
    pub = hpke.parse_public(pub_raw)  # 32 raw bytes
    assert hpke.serialize_public(pub) == pub_raw.hex().encode(), "raw key serializes differently"
    pt = plaintext(100)
    same(pyhpke_open(priv_raw, hpke.encrypt(pub, pt)), pt, "raw-bytes public key, 100 bytes")


def test_pyhpke_private_key_in_ours(hpke):
    pub_raw, priv_raw = pyhpke_keypair()
    priv = hpke.parse_private(f"# from pyhpke\n{priv_raw.hex()}\n".encode())
    assert hpke.serialize_public(priv) == pub_raw.hex().encode(), \
        "public key derived by libtdnskrs differs from pyhpke's"
    assert hpke.serialize_private(priv) == priv_raw.hex().encode(), \
        "private key does not serialize back to the same 32 bytes"
    pt = plaintext(100)
    same(hpke.decrypt(priv, pyhpke_seal(pub_raw, pt)), pt, "pyhpke key pair, 100 bytes")


def test_our_private_key_in_pyhpke(hpke):
    pub, priv = hpke.generate()
    priv_raw = bytes.fromhex(hpke.serialize_private(priv).decode())
    pt = plaintext(1000)
    same(pyhpke_open(priv_raw, hpke.encrypt(pub, pt)), pt, "our private key in pyhpke")


@pytest.mark.parametrize("variant", ["aes128gcm", "chacha20poly1305", "info", "aad"])
def test_pyhpke_other_parameters_refused(hpke, variant):
    """Only the exact suite, empty info and empty AAD may decrypt: anything else is KRS_ECRYPTO."""
    pub, priv = hpke.generate()
    pub_raw = bytes.fromhex(hpke.serialize_public(pub).decode())
    pt = plaintext(100)
    if variant == "aes128gcm":
        s = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES128_GCM)
        ct = pyhpke_seal(pub_raw, pt, suite=s)
    elif variant == "chacha20poly1305":
        s = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256,
                            AEADId.CHACHA20_POLY1305)
        ct = pyhpke_seal(pub_raw, pt, suite=s)
    elif variant == "info":
        ct = pyhpke_seal(pub_raw, pt, info=b"tdns")
    else:
        ct = pyhpke_seal(pub_raw, pt, aad=b"tdns")
    rc, out = hpke.decrypt_rc(priv, ct)
    assert rc == KRS_ECRYPTO, f"{variant}: got {RCNAMES.get(rc, rc)} ({rc}), want KRS_ECRYPTO"


# --- HPKE: cryptography.hazmat.primitives.hpke (second peer) ----------------------------------

def _crypto_hpke():
    try:
        from cryptography.hazmat.primitives import hpke as chpke
        from cryptography.hazmat.primitives.asymmetric import x25519
    except ImportError:
        pytest.skip("cryptography has no hazmat.primitives.hpke")
    return chpke, x25519


@pytest.mark.parametrize("size", SIZES)
def test_cryptography_hpke_encrypts_to_our_key(hpke, size):
    chpke, x25519 = _crypto_hpke()
    suite = chpke.Suite(chpke.KEM.X25519, chpke.KDF.HKDF_SHA256, chpke.AEAD.AES_256_GCM)
    pub, priv = hpke.generate()
    pk = x25519.X25519PublicKey.from_public_bytes(bytes.fromhex(hpke.serialize_public(pub).decode()))
    pt = plaintext(size)
    same(hpke.decrypt(priv, suite.encrypt(pt, pk)), pt, f"cryptography hpke -> ours, {size} bytes")


@pytest.mark.parametrize("size", SIZES)
def test_our_encrypt_decrypts_in_cryptography_hpke(hpke, size):
    chpke, x25519 = _crypto_hpke()
    from cryptography.hazmat.primitives import serialization
    suite = chpke.Suite(chpke.KEM.X25519, chpke.KDF.HKDF_SHA256, chpke.AEAD.AES_256_GCM)
    sk = x25519.X25519PrivateKey.generate()
    raw = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    pub = hpke.parse_public(raw.hex().encode())
    pt = plaintext(size)
    same(suite.decrypt(hpke.encrypt(pub, pt), sk), pt, f"ours -> cryptography hpke, {size} bytes")


def test_cryptography_x25519_private_key_in_ours(hpke):
    chpke, x25519 = _crypto_hpke()
    from cryptography.hazmat.primitives import serialization
    suite = chpke.Suite(chpke.KEM.X25519, chpke.KDF.HKDF_SHA256, chpke.AEAD.AES_256_GCM)
    sk = x25519.X25519PrivateKey.generate()
    raw = sk.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                           serialization.NoEncryption())
    praw = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    priv = hpke.parse_private(raw)
    assert hpke.serialize_public(priv) == praw.hex().encode(), "derived public keys differ"
    pt = plaintext(100)
    same(hpke.decrypt(priv, suite.encrypt(pt, sk.public_key())), pt, "cryptography key, 100 bytes")


# --- JOSE: jwcrypto ----------------------------------------------------------------------------

from jwcrypto import jwe as jjwe  # noqa: E402
from jwcrypto import jwk as jjwk  # noqa: E402


def jwc_encrypt(pub_jwk_json, pt, header=None):
    header = header or {"alg": "ECDH-ES", "enc": "A256GCM"}
    e = jjwe.JWE(pt, protected=json.dumps(header))
    e.add_recipient(jjwk.JWK.from_json(pub_jwk_json))
    return e.serialize(compact=True).encode()


def jwc_decrypt(priv_jwk_json, compact):
    d = jjwe.JWE()
    d.deserialize(compact.decode(), key=jjwk.JWK.from_json(priv_jwk_json))
    return d.payload, d.jose_header


@pytest.mark.parametrize("size", SIZES)
def test_jwcrypto_encrypts_to_our_key(jose, size):
    pub, priv = jose.generate()
    pt = plaintext(size)
    ct = jwc_encrypt(jose.serialize_public(pub), pt)
    same(jose.decrypt(priv, ct), pt, f"jwcrypto JWE -> libtdnskrs decrypt, {size} bytes")


@pytest.mark.parametrize("size", [1, 100, 10000])  # jwcrypto 1.6.1 cannot decrypt an empty payload
def test_our_encrypt_decrypts_in_jwcrypto(jose, size):
    pub, priv = jose.generate()
    pt = plaintext(size)
    ct = jose.encrypt(pub, pt)
    assert ct.count(b".") == 4, "not a compact JWE"
    got, header = jwc_decrypt(jose.serialize_private(priv), ct)
    same(got, pt, f"libtdnskrs encrypt -> jwcrypto, {size} bytes")
    assert header.get("alg") == "ECDH-ES" and header.get("enc") == "A256GCM", \
        f"header alg/enc are {header.get('alg')}/{header.get('enc')}"
    assert header.get("epk", {}).get("crv") == "P-256", "epk is not a P-256 key"


def test_jwcrypto_keys_parse_in_ours(jose):
    k = jjwk.JWK.generate(kty="EC", crv="P-256")
    pub = jose.parse_public(k.export_public().encode())
    priv = jose.parse_private(k.export_private().encode())
    # ours -> jwcrypto with jwcrypto's own key, and back
    pt = plaintext(100)
    got, _ = jwc_decrypt(k.export_private(), jose.encrypt(pub, pt))
    same(got, pt, "jwcrypto key: ours -> jwcrypto")
    pt = plaintext(100)
    same(jose.decrypt(priv, jwc_encrypt(k.export_public(), pt)), pt, "jwcrypto key: jwcrypto -> ours")
    # the public half we derive is the same point
    ours = json.loads(jose.serialize_public(priv))
    theirs = json.loads(k.export_public())
    assert (ours["x"], ours["y"], ours["crv"], ours["kty"]) == \
        (theirs["x"], theirs["y"], theirs["crv"], theirs["kty"]), "public halves differ"


def test_our_jwks_import_into_jwcrypto(jose):
    pub, priv = jose.generate()
    pj, sj = jose.serialize_public(pub), jose.serialize_private(priv)
    kp, ks = jjwk.JWK.from_json(pj), jjwk.JWK.from_json(sj)
    assert not kp.has_private and ks.has_private, "public/private flags wrong in jwcrypto"
    assert kp.thumbprint() == ks.thumbprint(), "thumbprints of the public and private JWK differ"
    d = json.loads(pj)
    assert d.get("use") == "enc" and d.get("alg") == "ECDH-ES" and "d" not in d, \
        "public JWK members differ from the Go backend's"


@pytest.mark.parametrize("header,want", [
    ({"alg": "ECDH-ES+A256KW", "enc": "A256GCM"}, KRS_EPOLICY),
    ({"alg": "ECDH-ES+A128KW", "enc": "A256GCM"}, KRS_EPOLICY),
    ({"alg": "ECDH-ES", "enc": "A128GCM"}, KRS_EPOLICY),
    ({"alg": "ECDH-ES", "enc": "A256CBC-HS512"}, KRS_EPOLICY),
    ({"alg": "ECDH-ES", "enc": "A256GCM", "zip": "DEF"}, KRS_EPOLICY),
    ({"alg": "ECDH-ES", "enc": "A256GCM", "crit": ["exp"], "exp": 1}, KRS_EPOLICY),
], ids=["ECDH-ES+A256KW", "ECDH-ES+A128KW", "A128GCM", "A256CBC-HS512", "zip", "crit"])
def test_jwcrypto_other_algorithms_refused(jose, header, want):
    pub, priv = jose.generate()
    ct = jwc_encrypt(jose.serialize_public(pub), plaintext(100), header)
    rc, _ = jose.decrypt_rc(priv, ct)
    assert rc == want, f"{header}: got {RCNAMES.get(rc, rc)} ({rc}), want {RCNAMES[want]} ({want})"


def test_jwcrypto_extra_protected_headers_accepted(jose):
    """The Go signed path adds cty/typ/kid and metadata members to the protected header."""
    pub, priv = jose.generate()
    pt = plaintext(500)
    header = {"alg": "ECDH-ES", "enc": "A256GCM", "cty": "application/octet-stream",
              "typ": "tdns-distribution", "crypto_backend": "jose", "recipients_count": 1,
              "distribution_id": "abc123", "timestamp": "2026-11-29T12:00:00Z", "sender": "kdc"}
    same(jose.decrypt(priv, jwc_encrypt(jose.serialize_public(pub), pt, header)), pt,
         "jwcrypto JWE with extra protected headers")


def test_jwcrypto_wrong_key_is_ecrypto(jose):
    pub, _ = jose.generate()
    _, other = jose.generate()
    rc, _ = jose.decrypt_rc(other, jwc_encrypt(jose.serialize_public(pub), plaintext(100)))
    assert rc == KRS_ECRYPTO, f"got {RCNAMES.get(rc, rc)} ({rc}), want KRS_ECRYPTO"


@pytest.mark.parametrize("kind", [
    {"kty": "EC", "crv": "P-384"}, {"kty": "EC", "crv": "P-521"}, {"kty": "EC", "crv": "secp256k1"},
    {"kty": "OKP", "crv": "X25519"}, {"kty": "RSA", "size": 2048}, {"kty": "oct", "size": 256},
], ids=["P-384", "P-521", "secp256k1", "OKP-X25519", "RSA", "oct"])
def test_jwcrypto_other_key_types_refused(jose, kind):
    """Only EC P-256 keys belong to this backend; the header documents KRS_EKEYTYPE."""
    k = jjwk.JWK.generate(**kind)
    if kind["kty"] != "oct":
        expect_rc(lambda: jose.parse_public(k.export_public().encode()), KRS_EKEYTYPE,
                  f"parse_public_key of a {kind['kty']} {kind.get('crv', '')} key")
    text = (k.export() if kind["kty"] == "oct" else k.export_private()).encode()
    expect_rc(lambda: jose.parse_private(text), KRS_EKEYTYPE,
              f"parse_private_key of a {kind['kty']} {kind.get('crv', '')} key")


# --- JOSE: the Debian `jose` CLI ---------------------------------------------------------------

JOSE_CLI = shutil.which("jose")
need_cli = pytest.mark.skipif(JOSE_CLI is None, reason="jose CLI not installed")


@pytest.fixture
def tmp():
    with tempfile.TemporaryDirectory(prefix="tdnskrs-interop.") as d:
        os.chmod(d, 0o700)
        yield d


def cli(*args, stdin=None):
    """Runs the jose CLI; raises with its exit status only (its output may hold secrets)."""
    p = subprocess.run([JOSE_CLI, *args], input=stdin, capture_output=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError(f"jose {args[0]} {args[1] if len(args) > 1 else ''} failed "
                             f"with status {p.returncode}")
    return p.stdout


def write(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


ECDH_ES_A256GCM = '{"protected":{"alg":"ECDH-ES","enc":"A256GCM"}}'


@need_cli
@pytest.mark.parametrize("size", SIZES)
def test_jose_cli_encrypts_to_our_key(jose, tmp, size):
    pub, priv = jose.generate()
    kf = write(os.path.join(tmp, "pub.jwk"), jose.serialize_public(pub))
    pf = write(os.path.join(tmp, "pt"), plaintext(size))
    ct = cli("jwe", "enc", "-I", pf, "-k", kf, "-i", ECDH_ES_A256GCM, "-c")
    with open(pf, "rb") as f:
        pt = f.read()
    same(jose.decrypt(priv, ct.strip()), pt, f"jose jwe enc -> libtdnskrs decrypt, {size} bytes")


@need_cli
@pytest.mark.parametrize("size", SIZES)
def test_our_encrypt_decrypts_in_jose_cli(jose, tmp, size):
    pub, priv = jose.generate()
    kf = write(os.path.join(tmp, "priv.jwk"), jose.serialize_private(priv))
    pt = plaintext(size)
    cf = write(os.path.join(tmp, "ct.jwe"), jose.encrypt(pub, pt))
    of = os.path.join(tmp, "out")
    cli("jwe", "dec", "-i", cf, "-k", kf, "-O", of)
    with open(of, "rb") as f:
        same(f.read(), pt, f"libtdnskrs encrypt -> jose jwe dec, {size} bytes")


@need_cli
def test_jose_cli_keys_parse_in_ours(jose, tmp):
    kf = os.path.join(tmp, "k.jwk")
    cli("jwk", "gen", "-i", '{"kty":"EC","crv":"P-256"}', "-o", kf)
    pf = os.path.join(tmp, "p.jwk")
    cli("jwk", "pub", "-i", kf, "-o", pf)
    with open(kf, "rb") as f:
        priv = jose.parse_private(f.read())
    with open(pf, "rb") as f:
        ptext = f.read()
    pub = jose.parse_public(ptext)
    assert json.loads(jose.serialize_public(priv))["x"] == json.loads(ptext)["x"], \
        "public half of the CLI's private key differs from the CLI's public key"
    # CLI key: ours -> CLI and CLI -> ours
    pt = plaintext(100)
    cf = write(os.path.join(tmp, "ct.jwe"), jose.encrypt(pub, pt))
    of = os.path.join(tmp, "out")
    cli("jwe", "dec", "-i", cf, "-k", kf, "-O", of)
    with open(of, "rb") as f:
        same(f.read(), pt, "CLI key: ours -> jose jwe dec")
    ptf = write(os.path.join(tmp, "pt"), plaintext(100))
    ct = cli("jwe", "enc", "-I", ptf, "-k", pf, "-i", ECDH_ES_A256GCM, "-c")
    with open(ptf, "rb") as f:
        same(jose.decrypt(priv, ct.strip()), f.read(), "CLI key: jose jwe enc -> ours")


@need_cli
def test_jose_cli_p521_key_refused(jose, tmp):
    """`jose jwk gen -i '{"alg":"ECDH-ES"}'` makes a P-521 key: not a key of this backend."""
    kf = os.path.join(tmp, "k521.jwk")
    cli("jwk", "gen", "-i", '{"alg":"ECDH-ES"}', "-o", kf)
    with open(kf, "rb") as f:
        text = f.read()
    assert json.loads(text).get("crv") == "P-521", "CLI default curve for ECDH-ES changed"
    expect_rc(lambda: jose.parse_private(text), KRS_EKEYTYPE, "P-521 private key from the jose CLI")
    pf = os.path.join(tmp, "p521.jwk")
    cli("jwk", "pub", "-i", kf, "-o", pf)
    with open(pf, "rb") as f:
        ptext = f.read()
    expect_rc(lambda: jose.parse_public(ptext), KRS_EKEYTYPE, "P-521 public key from the jose CLI")


@need_cli
@pytest.mark.parametrize("template,want", [
    ('{"protected":{"alg":"ECDH-ES+A256KW","enc":"A256GCM"}}', KRS_EPOLICY),
    ('{"protected":{"alg":"ECDH-ES+A128KW","enc":"A128CBC-HS256"}}', KRS_EPOLICY),
    ('{"protected":{"alg":"ECDH-ES","enc":"A128GCM"}}', KRS_EPOLICY),
    ('{"protected":{"alg":"ECDH-ES","enc":"A256CBC-HS512"}}', KRS_EPOLICY),
], ids=["ECDH-ES+A256KW", "ECDH-ES+A128KW/A128CBC-HS256", "A128GCM", "A256CBC-HS512"])
def test_jose_cli_other_algorithms_refused(jose, tmp, template, want):
    pub, priv = jose.generate()
    # the CLI honours the key's "alg": strip it so the template decides
    d = json.loads(jose.serialize_public(pub))
    d.pop("alg", None)
    kf = write(os.path.join(tmp, "pub.jwk"), json.dumps(d).encode())
    pf = write(os.path.join(tmp, "pt"), plaintext(100))
    ct = cli("jwe", "enc", "-I", pf, "-k", kf, "-i", template, "-c")
    rc, _ = jose.decrypt_rc(priv, ct.strip())
    assert rc == want, f"{template}: got {RCNAMES.get(rc, rc)} ({rc}), want {RCNAMES[want]} ({want})"


@need_cli
def test_jose_cli_default_jwe_refused(jose, tmp):
    """Without a template the CLI picks ECDH-ES+A128KW / A128CBC-HS256 for a key without alg."""
    pub, priv = jose.generate()
    d = json.loads(jose.serialize_public(pub))
    d.pop("alg", None)
    kf = write(os.path.join(tmp, "pub.jwk"), json.dumps(d).encode())
    pf = write(os.path.join(tmp, "pt"), plaintext(100))
    ct = cli("jwe", "enc", "-I", pf, "-k", kf, "-c")
    rc, _ = jose.decrypt_rc(priv, ct.strip())
    assert rc == KRS_EPOLICY, f"got {RCNAMES.get(rc, rc)} ({rc}), want KRS_EPOLICY"
