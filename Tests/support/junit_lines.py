"""Turns a pytest JUnit XML report into the suites' line protocol.

Usage: python junit_lines.py PREFIX JUNIT_XML PYTEST_STATUS

Prints "PASS: <PREFIX>: <test>" / "FAIL: <PREFIX>: <test> — <first line of the failure>"
per test case ("# SKIP: …" for skipped ones), a FAIL line when nothing ran or pytest ended
abnormally (status other than 0 and 1), and exits 1 if any FAIL line was printed.
"""
import sys
import xml.etree.ElementTree as ET

DASH = "\u2014"


def first_line(text):
    lines = (text or "").strip().splitlines()
    return (lines[0] if lines else "no message")[:400]


def main(prefix, path, status):
    passed = failed = 0
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{prefix}: {case.get('name', '?')}"
        fails = case.findall("failure") + case.findall("error")
        skips = case.findall("skipped")
        if fails:
            failed += 1
            f = fails[0]
            kind = "error" if f.tag == "error" else "failed"
            print(f"FAIL: {name} {DASH} {kind}: {first_line(f.get('message') or f.text)}")
        elif skips:
            print(f"# SKIP: {name} {DASH} {first_line(skips[0].get('message'))}")
        else:
            passed += 1
            print(f"PASS: {name}")
    if passed + failed == 0:
        print(f"FAIL: {prefix}: pytest collected tests {DASH} none ran (pytest status {status})")
        failed += 1
    elif status not in (0, 1):
        print(f"FAIL: {prefix}: pytest finished normally {DASH} pytest status {status}")
        failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
