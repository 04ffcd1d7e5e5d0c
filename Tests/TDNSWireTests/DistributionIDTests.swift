import TDNSCore
import TDNSTestSupport
import Testing

@testable import TDNSWire

/// A distribution ID from a literal the test knows to be valid.
func distID(_ text: String) throws -> DistributionID { try DistributionID(validating: text) }

/// The one rule for distribution IDs: the Go KDC's (PROTOCOL §1, §2.6 step 3,
/// `ParseQnameForMANIFEST`) — 4–16 hex characters that decode as hex, kept lowercase.
@Suite("DistributionID")
struct DistributionIDTests {
    static let accepted: [(String, String)] = [
        ("abcd", "abcd"),  // the shortest
        ("6978914f", "6978914f"),  // today's Go KDC: fmt %x of a Unix-time counter
        ("6A2FE001", "6a2fe001"),  // DNS labels compare case-insensitively; kept lowercase
        ("0123456789abcdef", "0123456789abcdef"),  // the longest
        ("00ff", "00ff"),  // leading zeros decode as hex too
        ("aBcDeF", "abcdef"),
    ]

    static let refused: [String] = [
        "",  // empty
        "ab",  // too short
        "abc",  // odd and too short: Receiver's old rule (1–16) took it, the KDC never did
        "abcde",  // odd length: does not decode as hex
        "6978914",  // odd: what `%x` gives for a small counter; the KDC could not parse it either
        "0123456789abcdef01",  // 18: too long
        "xyzw",  // not hex
        "6a2f 0c2",  // a blank
        "6a2f00c2.",  // a dot: it would become two labels
        "../etc",  // a path: IDs become file names in state_dir
        "６a2f",  // non-ASCII digits
        "0x6a2f",  // a prefix
    ]

    @Test("accepted, lowercased", arguments: accepted)
    func accepts(_ text: String, _ stored: String) throws {
        let id = try #require(DistributionID(text))
        #expect(id.text == stored && id.description == stored)
        #expect(try DistributionID(validating: text) == id)
        // The same ID whichever case it arrived in.
        #expect(DistributionID(text.uppercased()) == id)
    }

    @Test("refused: not 4–16 hex characters of even length", arguments: refused)
    func refuses(_ text: String) {
        #expect(DistributionID(text) == nil)
        expectCode(.malformed, "\(text)") { _ = try DistributionID(validating: text) }
    }

    @Test("a refused ID is shown shortened and printable in the error")
    func shownInErrors() {
        let e = #expect(throws: TDNSError.self) { try DistributionID(validating: "\u{1}\"" + String(repeating: "z", count: 100)) }
        #expect(e?.reason == "distribution ID \"??zzzzzzzzzzzzzzzzzz\" is not 4–16 hex characters of even length")
    }

    @Test("the rule of NOTIFY and CHUNK query names is the same")
    func namesUseTheRule() throws {
        let zone = try DNSName("kdc.example.")
        for (text, stored) in Self.accepted {
            #expect(try TDNSMessages.distributionID(fromNotifyName: try DNSName("\(text).kdc.example."), controlZone: zone).text == stored)
            let parsed = try TDNSMessages.parseChunkQueryName(try DNSName("krs1.example.\(text).kdc.example."), controlZone: zone)
            #expect(parsed.distributionID.text == stored)
        }
        for text in Self.refused where !text.isEmpty {
            guard let name = try? DNSName("\(text).kdc.example.") else { continue }
            expectCode(.malformed, "\(text)") { _ = try TDNSMessages.distributionID(fromNotifyName: name, controlZone: zone) }
        }
    }
}
