/// Prometheus text exposition format 0.0.4, written by hand: a few dozen lines instead of
/// swift-prometheus, because this runs inside named and knotd — no global registry, no extra
/// threads, nothing kept between scrapes. A scrape builds the families from the same data as
/// `status --json` and renders them at once.
///
/// Names must match `[a-zA-Z_:][a-zA-Z0-9_:]*` and label names `[a-zA-Z_][a-zA-Z0-9_]*`;
/// callers pass constants (checked by the unit tests), so nothing here validates them. Label
/// values and HELP text are escaped as the format requires.
public struct PrometheusFamily: Sendable, Equatable {
    public enum Kind: String, Sendable { case counter, gauge }

    public struct Sample: Sendable, Equatable {
        public var labels: [(String, String)]
        public var value: Double

        public init(_ labels: [(String, String)] = [], _ value: Double) {
            self.labels = labels
            self.value = value
        }

        public static func == (a: Sample, b: Sample) -> Bool {
            a.value == b.value && a.labels.map(\.0) == b.labels.map(\.0) && a.labels.map(\.1) == b.labels.map(\.1)
        }
    }

    public var name: String
    public var help: String
    public var kind: Kind
    public var samples: [Sample]

    public init(_ name: String, _ kind: Kind, help: String, _ samples: [Sample]) {
        self.name = name
        self.kind = kind
        self.help = help
        self.samples = samples
    }

    /// A family with one unlabelled sample.
    public init(_ name: String, _ kind: Kind, help: String, value: Double) {
        self.init(name, kind, help: help, [Sample([], value)])
    }
}

public enum PrometheusText {
    /// The Content-Type of this format.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// HELP text: backslash and newline escaped.
    public static func escapeHelp(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// A label value: backslash, double quote and newline escaped.
    public static func escapeLabelValue(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// A sample value: integers without a fraction (counters here are integers), else Go's
    /// float syntax (`NaN`, `+Inf`, `-Inf`).
    public static func formatValue(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }

    /// The exposition: HELP and TYPE before each family's samples, one line each, ending
    /// with a newline. Families without samples are left out (promtool rejects a TYPE with
    /// nothing after it only in strict mode, but an empty family says nothing).
    public static func render(_ families: [PrometheusFamily]) -> String {
        var out = ""
        for f in families where !f.samples.isEmpty {
            out += "# HELP \(f.name) \(escapeHelp(f.help))\n"
            out += "# TYPE \(f.name) \(f.kind.rawValue)\n"
            for s in f.samples {
                out += f.name
                if !s.labels.isEmpty {
                    out += "{" + s.labels.map { "\($0.0)=\"\(escapeLabelValue($0.1))\"" }.joined(separator: ",") + "}"
                }
                out += " \(formatValue(s.value))\n"
            }
        }
        return out
    }
}
