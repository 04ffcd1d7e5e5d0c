#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import TDNSCore

/// Log lines of the KDC: one line each, with a UTC timestamp, never key material (STYLE
/// rule 11: key tags, zone and node names, distribution IDs only). The sink is injectable so
/// tests can read what was logged.
///
/// `refused` lines are rate-limited, because anyone can make the KDC refuse a request: at
/// most ``refusedLinesPerSecond`` in any one-second window; the rest are counted, and when the
/// next line of any level is logged after that second, one warning
/// "N refused requests not logged in the last second" comes first (so a query flood cannot
/// fill a disk, and the operator still learns how many were dropped). Other levels are never
/// limited.
public struct KDCLog: Sendable {
    public enum Level: String, Sendable { case info, warning, refused, error }

    /// `refused` lines logged per second at most.
    public static let refusedLinesPerSecond = 20

    private let sink: @Sendable (Level, String) -> Void
    private let clock: WallClock
    private let limiter: RefusalLimiter

    /// - Parameters:
    ///   - refusedPerSecond: `refused` lines per second at most (≥ 1).
    ///   - monotonic: the clock of the rate limit, in seconds (tests inject one; the wall clock
    ///     `clock` only stamps lines and may be fixed).
    public init(
        clock: WallClock = .system, refusedPerSecond: Int = KDCLog.refusedLinesPerSecond,
        monotonic: @escaping @Sendable () -> Double = { MonotonicClock.now() },
        sink: @escaping @Sendable (Level, String) -> Void
    ) {
        self.clock = clock
        self.sink = sink
        self.limiter = RefusalLimiter(limit: max(1, refusedPerSecond), now: monotonic)
    }

    /// Lines to standard error: `2026-11-29T12:00:00Z tdns-kdc info: …`.
    public static func standardError(clock: WallClock = .system) -> KDCLog {
        KDCLog(clock: clock) { level, message in
            let line = "\(RFC3339.format(clock.now)) tdns-kdc \(level.rawValue): \(message)\n"
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


    public func info(_ message: String) { emit(.info, message) }
    public func warning(_ message: String) { emit(.warning, message) }
    /// A request refused because of bad input (PROTOCOL §2.7, §11.5): logged (rate-limited,
    /// see the type's documentation), state unchanged.
    public func refused(_ message: String) { emit(.refused, message) }
    public func error(_ message: String) { emit(.error, message) }

    private func emit(_ level: Level, _ message: String) {
        let decision = limiter.admit(refused: level == .refused)
        if let summary = decision.summary { sink(.warning, summary) }
        if decision.log { sink(level, Self.oneLine(message)) }
    }

    private static func oneLine(_ s: String) -> String {
        String(s.map { $0 == "\n" || $0 == "\r" ? " " : $0 })
    }
}

/// The one-second windows of the `refused` rate limit; shared by every copy of a ``KDCLog``.
final class RefusalLimiter: Sendable {
    private struct Window {
        var start = -Double.infinity
        var logged = 0
        var suppressed = 0
    }

    private let limit: Int
    private let now: @Sendable () -> Double
    private let window = Mutex(Window())

    init(limit: Int, now: @escaping @Sendable () -> Double) {
        self.limit = limit
        self.now = now
    }

    /// Whether to log this line, and the summary of a finished window to log before it.
    func admit(refused: Bool) -> (log: Bool, summary: String?) {
        let t = now()
        return window.withLock { w in
            var summary: String? = nil
            if t - w.start >= 1 {
                if w.suppressed > 0 {
                    let ended = t - (w.start + 1)
                    summary = ended < 1
                        ? "\(w.suppressed) refused requests not logged in the last second"
                        : "\(w.suppressed) refused requests not logged in the second that ended \(Int(ended.rounded())) s ago"
                    w.suppressed = 0
                }
                // A new window opens only with a refused line: other levels just flush.
                if refused {
                    w.start = t
                    w.logged = 0
                }
            }
            guard refused else { return (true, summary) }
            if w.logged < limit {
                w.logged += 1
                return (true, summary)
            }
            w.suppressed += 1
            return (false, summary)
        }
    }
}
