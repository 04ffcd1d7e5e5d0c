"""
A strict parser and linter of the Prometheus text exposition format 0.0.4, used instead of
`promtool check metrics`: Debian's promtool comes only in the `prometheus` package (96 MB
installed, and its postinst starts a Prometheus server on :9090), too much for a test
dependency. The checks are those of the format's specification and of promtool's linter:

- every line ends with "\n"; no blank lines; comments are `# HELP name text` or
  `# TYPE name type` (other `#` lines are allowed, as in the format, but we emit none);
- at most one HELP and one TYPE per family, both before its first sample; a family's samples
  are contiguous; every family has HELP text and a TYPE (promtool: "no help text");
- metric and label names match the format's grammar and are snake_case (lower case);
  label values use only the escapes \\\\ \\" \\n; no label name twice in a sample;
- values parse as Go floats (NaN, +Inf, -Inf too); no series twice;
- counters end in `_total`, and nothing else does; `_info` metrics are gauges of value 1;
  no milliseconds units (promtool: "use base unit").

parse(text) returns {"families": {name: {"help", "type"}}, "samples": {(name, labels): value}}
with labels a sorted tuple of (name, value); it raises ValueError naming the line on any
violation.
"""
import math
import re

METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
SNAKE = re.compile(r"[a-z_:][a-z0-9_:]*")
FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|Inf|NaN)")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def _unescape(s, allowed, where):
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            if i + 1 >= len(s) or s[i + 1] not in allowed:
                raise ValueError(f"{where}: bad escape in {s!r}")
            out.append({"\\": "\\", '"': '"', "n": "\n"}[s[i + 1]])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _family_of(name, families):
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and families.get(base, {}).get("type") in ("histogram", "summary"):
            return base
    return name


def parse(text):
    try:
        return _parse(text)
    except IndexError:
        raise ValueError("a line ends inside a sample") from None


def _parse(text):
    if not text.endswith("\n"):
        raise ValueError("the text does not end with a newline")
    families, samples, done, current = {}, {}, set(), None
    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = f"line {n}"
        if line == "":
            raise ValueError(f"{where}: blank line")
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                kind, name = parts[1], parts[2]
                rest = parts[3] if len(parts) > 3 else ""
                if not METRIC.fullmatch(name):
                    raise ValueError(f"{where}: bad metric name {name!r}")
                if name in done or name == current:
                    raise ValueError(f"{where}: {kind} after the samples of {name}")
                f = families.setdefault(name, {})
                if kind.lower() in f:
                    raise ValueError(f"{where}: second {kind} for {name}")
                if kind == "HELP":
                    f["help"] = _unescape(rest, "\\n", where)
                else:
                    if rest not in TYPES:
                        raise ValueError(f"{where}: bad type {rest!r}")
                    f["type"] = rest
            continue
        m = METRIC.match(line)
        if not m:
            raise ValueError(f"{where}: no metric name")
        name, i, labels = m.group(0), m.end(), {}
        if i < len(line) and line[i] == "{":
            i += 1
            while True:
                if line[i] == "}":
                    i += 1
                    break
                lm = LABEL.match(line, i)
                if not lm:
                    raise ValueError(f"{where}: bad label name")
                lname = lm.group(0)
                i = lm.end()
                if line[i : i + 2] != '="':
                    raise ValueError(f"{where}: label {lname} without =\"")
                i += 2
                j = i
                while line[j] != '"':
                    j += 2 if line[j] == "\\" else 1
                if lname in labels:
                    raise ValueError(f"{where}: label {lname} twice")
                if not SNAKE.fullmatch(lname):
                    raise ValueError(f"{where}: label name {lname} is not snake_case")
                labels[lname] = _unescape(line[i:j], '\\"n', where)
                i = j + 1
                if line[i] == ",":
                    i += 1
                elif line[i] != "}":
                    raise ValueError(f"{where}: expected , or }} after a label")
        if line[i : i + 1] != " ":
            raise ValueError(f"{where}: no space before the value")
        fields = line[i + 1 :].split(" ")
        if not 1 <= len(fields) <= 2 or not FLOAT.fullmatch(fields[0]):
            raise ValueError(f"{where}: bad value {line[i + 1:]!r}")
        if len(fields) == 2 and not re.fullmatch(r"-?\d+", fields[1]):
            raise ValueError(f"{where}: bad timestamp")
        value = float(fields[0].replace("Inf", "inf").replace("NaN", "nan"))
        fam = _family_of(name, families)
        if fam != current:
            if fam in done:
                raise ValueError(f"{where}: samples of {fam} are not contiguous")
            if current is not None:
                done.add(current)
            current = fam
        key = (name, tuple(sorted(labels.items())))
        if key in samples:
            raise ValueError(f"{where}: series {key} twice")
        samples[key] = value
        f = families.setdefault(fam, {})
        if "type" not in f or "help" not in f or not f["help"]:
            raise ValueError(f"{where}: {fam} has no TYPE or no HELP before its samples")
        if not SNAKE.fullmatch(fam):
            raise ValueError(f"{where}: {fam} is not snake_case")
        if (f["type"] == "counter") != fam.endswith("_total"):
            raise ValueError(f"{where}: {fam}: counters, and only counters, end in _total")
        if fam.endswith("_info") and (f["type"] != "gauge" or value != 1):
            raise ValueError(f"{where}: {fam}: an _info metric is a gauge of value 1")
        if re.search(r"(^|_)(milliseconds|ms|millis)(_|$)", fam):
            raise ValueError(f"{where}: {fam}: use base units (seconds)")
        if f["type"] == "counter" and (value < 0 or math.isnan(value)):
            raise ValueError(f"{where}: {fam}: a counter is not negative")
    for name, f in families.items():
        if not any(_family_of(s[0], families) == name for s in samples):
            raise ValueError(f"{name}: HELP/TYPE without samples")
    return {"families": families, "samples": samples}


def value(parsed, name, **labels):
    return parsed["samples"].get((name, tuple(sorted(labels.items()))))
