import Testing

@testable import TDNSCore

/// The hand-written Prometheus text exposition (format 0.0.4).
@Suite("PrometheusText")
struct PrometheusTextTests {
    @Test("HELP and TYPE precede each family's samples; the text ends with a newline")
    func helpAndType() {
        let text = PrometheusText.render([
            PrometheusFamily("a_total", .counter, help: "A counter.", value: 3),
            PrometheusFamily("b", .gauge, help: "A gauge.", [.init([("x", "1")], 0.5), .init([("x", "2")], 2)]),
        ])
        #expect(text == """
            # HELP a_total A counter.
            # TYPE a_total counter
            a_total 3
            # HELP b A gauge.
            # TYPE b gauge
            b{x="1"} 0.5
            b{x="2"} 2

            """)
    }

    @Test("label values escape backslash, double quote and newline; other text is kept")
    func labelEscaping() {
        #expect(PrometheusText.escapeLabelValue(#"a\b"c"#) == #"a\\b\"c"#)
        #expect(PrometheusText.escapeLabelValue("line1\nline2") == #"line1\nline2"#)
        #expect(PrometheusText.escapeLabelValue("ünï {x} #") == "ünï {x} #")
        let text = PrometheusText.render([PrometheusFamily("m", .gauge, help: "h", [.init([("v", "q\"\\\n")], 1)])])
        #expect(text.contains(#"m{v="q\"\\\n"} 1"#))
        #expect(text.split(separator: "\n").count == 3)
    }

    @Test("HELP escapes backslash and newline but not quotes")
    func helpEscaping() {
        #expect(PrometheusText.escapeHelp("a\\b\n\"c\"") == #"a\\b\n"c""#)
        let text = PrometheusText.render([PrometheusFamily("m", .gauge, help: "two\nlines", value: 1)])
        #expect(text.hasPrefix("# HELP m two\\nlines\n# TYPE m gauge\n"))
    }

    @Test("values: integers without a fraction, special floats in Go syntax")
    func values() {
        #expect(PrometheusText.formatValue(0) == "0")
        #expect(PrometheusText.formatValue(1234567) == "1234567")
        #expect(PrometheusText.formatValue(-2) == "-2")
        #expect(PrometheusText.formatValue(0.25) == "0.25")
        #expect(PrometheusText.formatValue(.nan) == "NaN")
        #expect(PrometheusText.formatValue(.infinity) == "+Inf")
        #expect(PrometheusText.formatValue(-.infinity) == "-Inf")
        #expect(Double(PrometheusText.formatValue(1e20)) == 1e20)
    }

    @Test("a family without samples is left out; no families, no text")
    func emptyFamilies() {
        #expect(PrometheusText.render([]) == "")
        #expect(PrometheusText.render([PrometheusFamily("m", .gauge, help: "h", [])]) == "")
    }

    @Test("the build version is a release number")
    func buildVersion() {
        let parts = TDNSBuild.version.split(separator: ".")
        #expect(parts.count == 3 && parts.allSatisfy { Int($0) != nil })
    }
}
