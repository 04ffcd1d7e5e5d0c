import TDNSCore

/// A distribution's ID, valid by construction: what the Go KDC accepts as the distribution
/// label of a CHUNK query name — 4 to 16 hex characters that decode as hex, so of even length
/// (PROTOCOL §1 and §2.6 step 3, [Z] `ParseQnameForMANIFEST`) — kept lowercase, as the KDC
/// writes it (`fmt %x`, PROTOCOL §1).
///
/// The one rule for every place an ID arrives: NOTIFY and CHUNK query names, manifests,
/// `krs_fetch` and `krs_process_distribution`, the KRS's pending and unconfirmed stores, the
/// KDC. Only such an ID ever becomes a DNS label or part of a file name.
public struct DistributionID: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Lowercase hex, 4…16 characters, even length.
    public let text: String

    /// Lengths the KDC accepts (PROTOCOL §1).
    public static let lengths = 4...16

    /// The ID in `text`, hex of either case (DNS labels compare case-insensitively); nil when
    /// it is not 4–16 hex characters of even length.
    public init?(_ text: some StringProtocol) {
        let u = Array(text.utf8)
        guard Self.lengths.contains(u.count), u.count % 2 == 0, Hex.decode(u) != nil else { return nil }
        self.text = String(decoding: u.map(asciiLower), as: UTF8.self)
    }

    /// The same as ``init(_:)``, throwing `.malformed` (naming what was given, shortened) for
    /// an invalid ID.
    public init(validating text: some StringProtocol) throws(TDNSError) {
        guard let id = DistributionID(text) else {
            throw .malformed("distribution ID \"\(Self.shown(text))\" is not 4–16 hex characters of even length")
        }
        self = id
    }

    /// The ID of a DNS label (the label of a NOTIFY or CHUNK query name), or nil.
    init?(label: [UInt8]) {
        self.init(String(decoding: label, as: UTF8.self))
    }

    public var description: String { text }

    public static func < (a: DistributionID, b: DistributionID) -> Bool { a.text < b.text }

    /// At most 20 printable characters of a rejected ID, for messages.
    static func shown(_ text: some StringProtocol) -> String {
        String(text.prefix(20).map { c -> Character in
            guard let a = c.asciiValue, a >= 0x20, a < 0x7F, c != "\"" else { return "?" }
            return c
        })
    }
}
