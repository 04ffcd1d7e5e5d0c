#if canImport(Glibc)
import Glibc
#endif

/// Where "now" comes from. Injectable so tests and hosts decide (PROTOCOL §19: replay checks
/// with an injectable clock): the system clock, a fixed time (`now=` setting), or a host
/// callback (the C API's host clock).
public struct KRSClock: Sendable {
    private let source: @Sendable () -> Int64

    public init(_ source: @escaping @Sendable () -> Int64) { self.source = source }

    public static let system = KRSClock {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec)
    }

    public static func fixed(_ seconds: Int64) -> KRSClock { KRSClock { seconds } }

    /// Unix seconds.
    public var now: Int64 { source() }
}
