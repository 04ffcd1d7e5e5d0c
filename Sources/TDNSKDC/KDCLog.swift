#if canImport(Glibc)
import Glibc
#endif

/// Log lines of the KDC: one line each, with a UTC timestamp, never key material (STYLE
/// rule 11: key tags, zone and node names, distribution IDs only). The sink is injectable so
/// tests can read what was logged.
public struct KDCLog: Sendable {
    public enum Level: String, Sendable { case info, warning, refused, error }

    private let sink: @Sendable (Level, String) -> Void
    private let clock: KDCClock

    public init(clock: KDCClock = .system, sink: @escaping @Sendable (Level, String) -> Void) {
        self.clock = clock
        self.sink = sink
    }

    /// Lines to standard error: `2026-11-29T12:00:00Z tdns-kdc info: …`.
    public static func standardError(clock: KDCClock = .system) -> KDCLog {
        KDCLog(clock: clock) { level, message in
            let line = "\(KDCTime.rfc3339(clock.now)) tdns-kdc \(level.rawValue): \(message)\n"
            let bytes = Array(line.utf8)
            var done = 0
            while done < bytes.count {
                let n = bytes.withUnsafeBytes { write(2, $0.baseAddress.map { $0 + done }, bytes.count - done) }
                if n < 0, errno == EINTR { continue }
                guard n > 0 else { break }
                done += n
            }
        }
    }

    /// Discards everything.
    public static let silent = KDCLog(clock: .fixed(0)) { _, _ in }

    public func info(_ message: String) { sink(.info, Self.oneLine(message)) }
    public func warning(_ message: String) { sink(.warning, Self.oneLine(message)) }
    /// A request refused because of bad input (PROTOCOL §2.7, §11.5): logged, state unchanged.
    public func refused(_ message: String) { sink(.refused, Self.oneLine(message)) }
    public func error(_ message: String) { sink(.error, Self.oneLine(message)) }

    private static func oneLine(_ s: String) -> String {
        String(s.map { $0 == "\n" || $0 == "\r" ? " " : $0 })
    }
}
