#if canImport(Glibc)
import Glibc
#endif
import TDNSCore

/// Where "now" comes from: the system clock, or a fixed or stepped clock in tests.
public struct KDCClock: Sendable {
    private let source: @Sendable () -> Int64

    public init(_ source: @escaping @Sendable () -> Int64) { self.source = source }

    public static let system = KDCClock {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec)
    }

    public static func fixed(_ seconds: Int64) -> KDCClock { KDCClock { seconds } }

    /// Unix seconds.
    public var now: Int64 { source() }
}

/// The time texts of the Go KDC: RFC 3339 (`time.RFC3339`, enrollment and ping timestamps,
/// PROTOCOL §10.2, §11.3, §11.5) and Go's `time.Duration.String()` (`"5m0s"`, PROTOCOL §9.1).
public enum KDCTime {
    /// RFC 3339 in UTC, second precision: `2026-01-26T16:43:48Z` (what Go's
    /// `time.Now().UTC().Format(time.RFC3339)` writes).
    public static func rfc3339(_ unix: Int64) -> String {
        let days = floorDiv(unix, 86_400)
        let secs = unix - days * 86_400
        let (y, m, d) = civil(fromDays: days)
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(secs / 3600, 2)):\(pad(secs / 60 % 60, 2)):\(pad(secs % 60, 2))Z"
    }

    /// Parses RFC 3339 date-time (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, `T`/`t`, `Z`/`z`) as
    /// Go's `time.Parse(time.RFC3339, …)` accepts it; fractions are dropped. Nil when malformed.
    public static func parseRFC3339(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        guard b.count >= 20, b.count <= 40 else { return nil }
        func num(_ r: Range<Int>) -> Int64? {
            guard r.upperBound <= b.count else { return nil }
            var v: Int64 = 0
            for i in r {
                guard b[i] >= 0x30, b[i] <= 0x39 else { return nil }
                v = v * 10 + Int64(b[i] - 0x30)
            }
            return v
        }
        guard let y = num(0..<4), b[4] == UInt8(ascii: "-"), let mo = num(5..<7), b[7] == UInt8(ascii: "-"),
              let d = num(8..<10), b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t"),
              let h = num(11..<13), b[13] == UInt8(ascii: ":"), let mi = num(14..<16), b[16] == UInt8(ascii: ":"),
              let s = num(17..<19)
        else { return nil }
        guard (1...12).contains(mo), (1...daysIn(month: mo, year: y)).contains(d), h < 24, mi < 60, s < 60 else { return nil }
        var i = 19
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            let start = i
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }
            guard i > start else { return nil }
        }
        guard i < b.count else { return nil }
        var offset: Int64 = 0
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            guard i + 1 == b.count else { return nil }
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            guard i + 6 == b.count, let oh = num((i + 1)..<(i + 3)), b[i + 3] == UInt8(ascii: ":"),
                  let om = num((i + 4)..<(i + 6)), oh < 24, om < 60
            else { return nil }
            offset = (oh * 3600 + om * 60) * (b[i] == UInt8(ascii: "-") ? -1 : 1)
        } else {
            return nil
        }
        return days(fromCivil: y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset
    }

    /// Go's `time.Duration.String()` for whole seconds: `0s`, `45s`, `5m0s`, `720h0m0s`.
    public static func goDuration(_ seconds: Int64) -> String {
        guard seconds != 0 else { return "0s" }
        let sign = seconds < 0 ? "-" : ""
        let s = seconds.magnitude
        let h = s / 3600, m = s / 60 % 60, sec = s % 60
        if h > 0 { return "\(sign)\(h)h\(m)m\(sec)s" }
        if m > 0 { return "\(sign)\(m)m\(sec)s" }
        return "\(sign)\(sec)s"
    }

    /// Parses a duration as an operator types it: Go syntax (`5m`, `1h30m`, `90s`, `2h0m0s`) or
    /// plain seconds (`300`). Whole seconds; nil for anything else, zero, or over ten years.
    public static func parseDuration(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        guard !b.isEmpty, b.count <= 32 else { return nil }
        if b.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
            guard let v = Int64(text), v > 0, v <= 10 * 365 * 86_400 else { return nil }
            return v
        }
        var total: Int64 = 0
        var i = 0
        while i < b.count {
            let start = i
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }
            guard i > start, i - start <= 9, let value = Int64(String(decoding: b[start..<i], as: UTF8.self)) else { return nil }
            let unitStart = i
            while i < b.count, !(b[i] >= 0x30 && b[i] <= 0x39) { i += 1 }
            let scale: Int64
            switch String(decoding: b[unitStart..<i], as: UTF8.self) {
            case "s": scale = 1
            case "m": scale = 60
            case "h": scale = 3600
            case "d": scale = 86_400
            default: return nil
            }
            total += value * scale
            guard total <= 10 * 365 * 86_400 else { return nil }
        }
        return total > 0 ? total : nil
    }

    // MARK: - civil calendar (H. Hinnant)

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }

    static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = floorDiv(y, 400)
        let yoe = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    private static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    private static func pad(_ v: Int64, _ width: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }
}
