import Testing
import TDNSTestSupport

@testable import TDNSCore

/// TDNSError: an open set of codes (static lets), equality on the code only, the source
/// location kept for developers and out of what an operator reads.
@Suite("TDNSError")
struct ErrorTests {
    @Test("equality ignores the reason, the file and the line")
    func equalityOnCode() {
        let a = TDNSError(.malformed, "first reason")
        let b = TDNSError.malformed("another reason", file: "Elsewhere.swift", line: 999)
        #expect(a == b)
        #expect(a.reason != b.reason && a.line != b.line && "\(a.file)" != "\(b.file)")
        #expect(a != TDNSError(.tooBig, "first reason"))
        #expect(TDNSError.Code.malformed == TDNSError.Code("malformed"))
        #expect(TDNSError.Code.malformed != TDNSError.Code.tooBig)
    }

    @Test("file and line name where the error was made; description is the reason alone")
    func sourceLocation() {
        let line: UInt = #line + 1
        let e = TDNSError.config("state_dir: required setting is missing")
        #expect(e.line == line)
        #expect("\(e.file)".hasSuffix("ErrorTests.swift"))
        #expect(e.description == "state_dir: required setting is missing")
        #expect("\(e)" == e.reason)
        #expect(!e.description.contains("ErrorTests"))
        #expect(e.debugDescription == "config: state_dir: required setting is missing (\(e.file):\(line))")
    }

    @Test("code names are stable: audit lines and status details carry them")
    func names() {
        #expect(TDNSError.Code.all.map(\.name) == [
            "cryptoFailure", "wrongKeyType", "malformed", "tooBig", "policy", "internalFailure", "authentication",
            "unsigned", "replay", "stale", "storage", "config", "wrongNode", "keyMismatch", "network", "timeout", "dns",
        ])
        #expect(Set(TDNSError.Code.all).count == TDNSError.Code.all.count)
        #expect("\(TDNSError.Code.wrongNode)" == "wrongNode")
    }

    @Test("an added code is a value like the others, and a switch over codes keeps a default")
    func extensible() {
        let quota = TDNSError.Code("quota")
        let e = TDNSError(quota, "too many")
        #expect(e.code == quota && e != TDNSError(.tooBig, "too many"))
        let kind: String
        switch e.code {
        case .malformed, .tooBig: kind = "input"
        default: kind = "other"
        }
        #expect(kind == "other")
    }
}
