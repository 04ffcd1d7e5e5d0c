"""
Scrapes and probes a libtdnskrs metrics endpoint (HTTPMetricsServer: `tdns-kdc serve
--metrics`, `tdns-krs run --metrics`, `metrics_listen=` inside named/knotd) over raw sockets,
so that every byte of the answer is seen. 127.0.0.0/8 only.

As a module: scrape(port) and the checks (each raises AssertionError with the reason).
As a program:
    python metrics_http.py scrape PORT          → the body, parsed strictly (promtext), as JSON
    python metrics_http.py behaviour PORT       → one "PASS\tname" / "FAIL\tname\treason" line per check
"""
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import promtext  # noqa: E402

HOST = "127.0.0.1"


def connect(port, source="127.0.0.1", timeout=5):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect((HOST, port))
    return s


def read_all(s, limit=4 << 20):
    data = b""
    while len(data) < limit:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            break
        if not b:
            break
        data += b
    return data


def request(port, raw, source="127.0.0.1", timeout=5):
    """Sends raw bytes, reads until the server closes; returns (status, headers, body)."""
    s = connect(port, source, timeout)
    try:
        s.sendall(raw)
        data = read_all(s)
    finally:
        s.close()
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, f"no complete HTTP answer: {data[:200]!r}"
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    assert len(parts) == 3 and parts[0] == "HTTP/1.1", f"bad status line {lines[0]!r}"
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    assert int(headers.get("content-length", -1)) == len(body), f"Content-Length {headers.get('content-length')} for {len(body)} bytes"
    assert headers.get("connection") == "close", "no Connection: close"
    return int(parts[1]), headers, body


def scrape(port, version="1.1"):
    status, headers, body = request(port, f"GET /metrics HTTP/{version}\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\n\r\n".encode())
    assert status == 200, f"GET /metrics: {status}"
    assert headers.get("content-type") == "text/plain; version=0.0.4; charset=utf-8", headers.get("content-type")
    return body.decode("utf-8")


def parsed(port):
    return promtext.parse(scrape(port))


def closed_within(s, seconds):
    """Whether the server closes `s` (EOF or reset) within `seconds`; what it sent is ignored."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        s.settimeout(max(0.05, end - time.monotonic()))
        try:
            if not s.recv(65536):
                return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
    return False


# --- the checks ---------------------------------------------------------------------------------

def check_scrape_is_strict_exposition(port):
    p = promtext.parse(scrape(port))
    assert p["samples"], "no samples"
    promtext.parse(scrape(port, "1.0"))


def check_404_405_400(port):
    assert request(port, b"GET / HTTP/1.1\r\n\r\n")[0] == 404
    assert request(port, b"GET /metrics/x HTTP/1.0\r\n\r\n")[0] == 404
    st, h, _ = request(port, b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
    assert st == 405 and h.get("allow") == "GET", (st, h)
    assert request(port, b"HEAD /metrics HTTP/1.1\r\n\r\n")[0] == 405
    assert request(port, b"GET /metrics HTTP/3\r\n\r\n")[0] == 400
    assert request(port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n")[0] == 400


def check_oversized_request(port):
    s = connect(port)
    try:
        try:
            s.sendall(b"GET /metrics HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 9000 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = read_all(s)
    finally:
        s.close()
    # 431 when the answer got through; a reset may eat it (the request was not read to its end).
    assert data == b"" or data.startswith(b"HTTP/1.1 431 "), data[:100]
    scrape(port)


def check_slowloris(port):
    """A request trickled a byte every 0.3 s is cut at the 5 s deadline; scrapes go on."""
    s = connect(port, timeout=10)
    start = time.monotonic()
    try:
        closed = False
        for b in b"GET /metrics HTTP/1.1\r\nX-Slow: " + b"z" * 100:
            try:
                s.send(bytes([b]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if closed_within(s, 0.3):
                closed = True
                break
            if time.monotonic() - start > 9:
                break
            if int(time.monotonic() - start) % 2 == 0:
                scrape(port)  # served meanwhile
        took = time.monotonic() - start
        assert closed, f"still open after {took:.1f} s"
        assert 4 <= took <= 7, f"closed after {took:.1f} s, want ~5"
    finally:
        s.close()


def check_idle_connection_cut(port):
    s = connect(port, timeout=10)
    try:
        start = time.monotonic()
        assert closed_within(s, 8), "a silent connection stayed open"
        assert time.monotonic() - start >= 4
    finally:
        s.close()


def check_connection_caps(port):
    """4 per source: a fifth from 127.0.0.1 is closed at once; 16 in all: a seventeenth from a
    fifth address too; a scrape works again once they are gone."""
    held = []
    try:
        held = [connect(port) for _ in range(4)]
        time.sleep(0.2)
        extra = connect(port)
        assert closed_within(extra, 1.5), "a fifth connection from one address was kept"
        extra.close()
        for src in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
            held += [connect(port, src) for _ in range(4)]
        time.sleep(0.2)
        assert not any(closed_within(h, 0.01) for h in held), "a connection within the caps was closed"
        extra = connect(port, "127.0.0.5")
        assert closed_within(extra, 1.5), "a seventeenth connection was kept"
        extra.close()
    finally:
        for h in held:
            h.close()
    time.sleep(0.2)
    scrape(port)


CHECKS = [
    ("scrape is a strict 0.0.4 exposition (HTTP/1.1 and 1.0)", check_scrape_is_strict_exposition),
    ("404 for other paths, 405 with Allow for other methods, 400 for non-HTTP/1.x", check_404_405_400),
    ("oversized request (9 KB of headers) refused, server still serves", check_oversized_request),
    ("slowloris request cut at the deadline while others are served", check_slowloris),
    ("silent connection closed at the deadline", check_idle_connection_cut),
    ("connection caps: 4 per source, 16 in all", check_connection_caps),
]


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "scrape":
        p = parsed(port)
        print(json.dumps({"samples": [[n, dict(l), v] for (n, l), v in p["samples"].items()]}))
        return 0
    failed = 0
    for name, fn in CHECKS:
        try:
            fn(port)
            print(f"PASS\t{name}")
        except Exception as e:  # noqa: BLE001 — each check's failure is reported, not raised
            failed += 1
            print(f"FAIL\t{name}\t{type(e).__name__}: {str(e)[:300]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
