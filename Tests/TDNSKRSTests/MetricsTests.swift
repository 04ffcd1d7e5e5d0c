import Testing
import TDNSCore
@testable import TDNSKRS

/// The node's exposition is built from its status document.
@Suite("KRS metrics")
struct KRSMetricsTests {
    @Test("counters become _total counters, flags gauges, backends labelled counters")
    func fromStatus() throws {
        let status = try JSONValue.parse(Array("""
            {"enrolled": true, "running": false, "listening": false, "pending": ["a", "b"],
             "keys": [{"state": "active"}, {"state": "retired"}, {"state": "active"}],
             "counters": {"notifies": 5, "fetch_failures": 1, "weird-key": 2},
             "backends": {"hpke": {"distributions": 3, "label": "x"}, "jose": {"distributions": 4}}}
            """.utf8))
        let text = KRSMetrics.render(status: status)
        let lines = Set(text.split(separator: "\n").map(String.init))
        #expect(lines.contains("tdnskrs_build_info{version=\"\(TDNSBuild.version)\"} 1"))
        #expect(lines.contains("tdnskrs_enrolled 1"))
        #expect(lines.contains("tdnskrs_running 0"))
        #expect(lines.contains("tdnskrs_pending_distributions 2"))
        #expect(lines.contains("tdnskrs_keys{state=\"active\"} 2"))
        #expect(lines.contains("tdnskrs_keys{state=\"retired\"} 1"))
        #expect(lines.contains("# TYPE tdnskrs_notifies_total counter"))
        #expect(lines.contains("tdnskrs_notifies_total 5"))
        #expect(lines.contains("tdnskrs_fetch_failures_total 1"))
        #expect(lines.contains("tdnskrs_weird_key_total 2"))
        #expect(lines.contains("tdnskrs_backend_distributions_total{backend=\"hpke\"} 3"))
        #expect(lines.contains("tdnskrs_backend_distributions_total{backend=\"jose\"} 4"))
        #expect(!text.contains("backend_label"))  // a string field is no counter
        // One HELP and one TYPE per family.
        #expect(text.components(separatedBy: "# TYPE tdnskrs_backend_distributions_total").count == 2)
    }

    @Test("backends as an array of objects naming their backend")
    func backendArray() throws {
        let status = try JSONValue.parse(Array("""
            {"backends": [{"backend": "hpke", "installed": 1}, {"crypto": "jose", "installed": 2}, {"installed": 9}]}
            """.utf8))
        let text = KRSMetrics.render(status: status)
        #expect(text.contains("tdnskrs_backend_installed_total{backend=\"hpke\"} 1\n"))
        #expect(text.contains("tdnskrs_backend_installed_total{backend=\"jose\"} 2\n"))
        #expect(!text.contains(" 9\n"))
    }
}
