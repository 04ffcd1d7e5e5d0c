#if canImport(Glibc)
import Glibc
#endif

// The one home of time in libtdnskrs: where "now" comes from, the proleptic Gregorian
// calendar, and the three texts the protocols write times and durations in — DNS/BIND
// timestamps (YYYYMMDDHHMMSS), RFC 3339 and Go's time.Duration. No Foundation, no libc
// calendar calls (gmtime/timegm): plain integer arithmetic that cannot trap on any Int64.

// MARK: - clocks

/// Where "now" comes from, in Unix seconds. Injectable, so that tests and hosts decide
/// (PROTOCOL §19: replay checks with an injectable clock): the system clock, a fixed time
/// (the KRS's `now=` setting, tests), or a host callback (the C API's host clock).
public struct WallClock: Sendable {
    private let source: @Sendable () -> Int64
    /// Unix milliseconds, when the clock has a finer source than seconds.
    private let millisecondSource: (@Sendable () -> Int64)?

    public init(_ source: @escaping @Sendable () -> Int64) {
        self.source = source
        millisecondSource = nil
    }

    private init(seconds: @escaping @Sendable () -> Int64, milliseconds: (@Sendable () -> Int64)?) {
        source = seconds
        millisecondSource = milliseconds
    }

    /// A clock that counts Unix milliseconds; ``now`` is its whole seconds (rounded down).
    public static func milliseconds(_ source: @escaping @Sendable () -> Int64) -> WallClock {
        WallClock(
            seconds: {
                let ms = source()
                // Floor division, so that a time before 1970 does not round towards zero.
                return ms >= 0 ? ms / 1000 : -((-(ms + 1)) / 1000) - 1
            },
            milliseconds: source)
    }

    /// CLOCK_REALTIME (``now`` whole seconds, ``nowMilliseconds`` milliseconds).
    public static let system = WallClock.milliseconds {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) &* 1000 &+ Int64(ts.tv_nsec) / 1_000_000
    }

    public static func fixed(_ seconds: Int64) -> WallClock { WallClock { seconds } }

    /// Unix seconds.
    public var now: Int64 { source() }

    /// Unix milliseconds: for durations measured across processes and written down (the
    /// KDC's confirmation latency); a clock made from seconds gives `now · 1000`
    /// (saturating, never trapping).
    public var nowMilliseconds: Int64 {
        if let millisecondSource { return millisecondSource() }
        let (v, overflow) = source().multipliedReportingOverflow(by: 1000)
        return overflow ? (source() < 0 ? .min : .max) : v
    }
}

/// Seconds on CLOCK_MONOTONIC, immune to wall-clock steps: for deadlines, timers and rate
/// limits, never for anything written down.
public enum MonotonicClock {
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

// MARK: - civil time

/// A UTC date and time of the proleptic Gregorian calendar, to the second (no leap seconds,
/// as Unix time has none). Converts to and from Unix seconds over the whole Int64 range
/// (H. Hinnant's days_from_civil / civil_from_days).
public struct CivilTime: Equatable, Sendable {
    public let year: Int64
    /// 1…12.
    public let month: Int64
    /// 1…the month's length.
    public let day: Int64
    public let hour: Int64
    public let minute: Int64
    public let second: Int64

    /// The date and time of a Unix time.
    public init(unix: Int64) {
        // Floor division without overflow (unix − remainder would overflow near Int64.min).
        var days = unix / 86_400
        var secondOfDay = unix % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        (year, month, day) = Self.civil(fromDays: days)
        hour = secondOfDay / 3600
        minute = secondOfDay / 60 % 60
        second = secondOfDay % 60
    }

    /// A date and time given by its fields, or nil when one is out of range: years 0…9999
    /// (what the four-digit texts can say), months 1…12, days within the month (29 February
    /// only in leap years), hours 0…23, minutes and seconds 0…59.
    public init?(year: Int64, month: Int64, day: Int64, hour: Int64 = 0, minute: Int64 = 0, second: Int64 = 0) {
        guard (0...9999).contains(year), (1...12).contains(month),
              (1...Self.daysIn(month: month, year: year)).contains(day),
              (0...23).contains(hour), (0...59).contains(minute), (0...59).contains(second)
        else { return nil }
        self.year = year
        self.month = month
        self.day = day
        self.hour = hour
        self.minute = minute
        self.second = second
    }

    /// Unix seconds. Wrapping arithmetic: the true value always fits (it is either the Unix
    /// time this was made from, or a year ≤ 9999), while an intermediate product may not
    /// (`days × 86400` just below Int64.min).
    public var unix: Int64 {
        Self.days(fromCivil: year, month, day) &* 86_400 &+ hour &* 3600 &+ minute &* 60 &+ second
    }

    public static func isLeapYear(_ year: Int64) -> Bool {
        (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
    }

    public static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: return isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    /// Year, month, day of a day count since 1970-01-01. |days| ≤ Int64.max / 86400, so no
    /// step overflows.
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

    /// Days since 1970-01-01 of a date.
    static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = floorDiv(y, 400)
        let yoe = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}

/// `value` in decimal, zero-padded to `width` digits; a negative value gets its sign first.
public func zeroPadded(_ value: Int64, _ width: Int) -> String {
    let digits = String(value.magnitude)
    let padded = String(repeating: "0", count: max(0, width - digits.count)) + digits
    return value < 0 ? "-" + padded : padded
}

/// Exactly `count` ASCII digits at `offset`, as a number; nil otherwise.
private func digits(_ b: [UInt8], _ offset: Int, _ count: Int) -> Int64? {
    guard offset >= 0, count > 0, offset + count <= b.count else { return nil }
    var v: Int64 = 0
    for c in b[offset..<(offset + count)] {
        guard c >= 0x30, c <= 0x39 else { return nil }
        v = v * 10 + Int64(c - 0x30)
    }
    return v
}

// MARK: - DNS and BIND timestamps

/// `YYYYMMDDHHMMSS` in UTC: SIG/RRSIG times in presentation form (RFC 4034 §3.2) and BIND's
/// key timing metadata (`Created:`, `Inactive:`, `Delete:` in K-files).
public enum DNSTime {
    /// The timestamp of a Unix time, clamped to 0…2³²−1: both kinds of time are unsigned
    /// 32-bit seconds on the wire and in BIND (`isc_stdtime_t`), and a clamped time is a
    /// valid one where a wrapped time would lie.
    public static func format(_ unix: Int64) -> String {
        let c = CivilTime(unix: min(max(unix, 0), Int64(UInt32.max)))
        return zeroPadded(c.year, 4) + zeroPadded(c.month, 2) + zeroPadded(c.day, 2)
            + zeroPadded(c.hour, 2) + zeroPadded(c.minute, 2) + zeroPadded(c.second, 2)
    }

    /// Parses exactly 14 digits that name a real date and time; nil for anything else
    /// (13 months, 30 February, hour 24).
    public static func parse(_ text: some StringProtocol) -> Int64? {
        let b = Array(text.utf8)
        guard b.count == 14,
              let y = digits(b, 0, 4), let mo = digits(b, 4, 2), let d = digits(b, 6, 2),
              let h = digits(b, 8, 2), let mi = digits(b, 10, 2), let s = digits(b, 12, 2),
              let c = CivilTime(year: y, month: mo, day: d, hour: h, minute: mi, second: s)
        else { return nil }
        return c.unix
    }
}

// MARK: - RFC 3339

/// RFC 3339 date-time as the Go daemons write and read it (`time.RFC3339`): enrollment
/// timestamps and validity (PROTOCOL §11.2, §11.3, §11.5), ping timestamps (§10.2), and our
/// status and log output.
public enum RFC3339 {
    /// UTC, second precision: `2026-01-26T16:43:48Z` (Go's `t.UTC().Format(time.RFC3339)`).
    public static func format(_ unix: Int64) -> String {
        let c = CivilTime(unix: unix)
        return "\(zeroPadded(c.year, 4))-\(zeroPadded(c.month, 2))-\(zeroPadded(c.day, 2))T"
            + "\(zeroPadded(c.hour, 2)):\(zeroPadded(c.minute, 2)):\(zeroPadded(c.second, 2))Z"
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` (`T`/`t`, `Z`/`z`) as Go's
    /// `time.Parse(time.RFC3339, …)` accepts it; fractions are dropped. Nil when malformed.
    public static func parse(_ text: some StringProtocol) -> Int64? {
        let b = Array(text.utf8)
        guard b.count >= 20, b.count <= 40 else { return nil }
        func byte(_ i: Int, _ allowed: String) -> Bool { i < b.count && allowed.utf8.contains(b[i]) }
        guard let y = digits(b, 0, 4), byte(4, "-"), let mo = digits(b, 5, 2), byte(7, "-"),
              let d = digits(b, 8, 2), byte(10, "Tt"), let h = digits(b, 11, 2), byte(13, ":"),
              let mi = digits(b, 14, 2), byte(16, ":"), let s = digits(b, 17, 2),
              let c = CivilTime(year: y, month: mo, day: d, hour: h, minute: mi, second: s)
        else { return nil }
        var i = 19
        if byte(i, ".") {
            i += 1
            let start = i
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }
            guard i > start else { return nil }
        }
        var offset: Int64 = 0
        if byte(i, "Zz") {
            guard i + 1 == b.count else { return nil }
        } else if byte(i, "+-") {
            guard i + 6 == b.count, let oh = digits(b, i + 1, 2), byte(i + 3, ":"), let om = digits(b, i + 4, 2),
                  oh < 24, om < 60
            else { return nil }
            offset = (oh * 3600 + om * 60) * (b[i] == UInt8(ascii: "-") ? -1 : 1)
        } else {
            return nil
        }
        return c.unix - offset
    }
}

// MARK: - Go durations

/// Durations as the Go daemons write them (`time.Duration.String()`: `"5m0s"`, `"720h0m0s"`,
/// for `distribution_ttl` and `retire_time`, PROTOCOL §9.1, §13) and as operators type them.
///
/// One syntax, read by every caller (manifests, KRS settings, the KDC's command line): Go's
/// `time.ParseDuration` — an optional sign, then one or more decimal numbers (fractions
/// allowed: `1.5h`) each with a unit `ns`, `us` (`µs`, `μs`), `ms`, `s`, `m`, `h`; `0` alone —
/// plus two forms operators already use: the unit `d` (24 h, `--valid-for 7d`) and a bare
/// number of seconds (`max_skew=60`). Callers differ only in the range they allow.
public enum GoDuration {
    /// Go's `time.Duration.String()` for whole seconds: `0s`, `45s`, `5m0s`, `720h0m0s`, `-1m30s`.
    public static func format(seconds: Int64) -> String {
        guard seconds != 0 else { return "0s" }
        let sign = seconds < 0 ? "-" : ""
        let s = seconds.magnitude
        let h = s / 3600, m = s / 60 % 60, sec = s % 60
        if h > 0 { return "\(sign)\(h)h\(m)m\(sec)s" }
        if m > 0 { return "\(sign)\(m)m\(sec)s" }
        return "\(sign)\(sec)s"
    }

    /// The longest text read: far more than any duration needs, short enough to bound work.
    static let maxText = 64
    private static let nanosecondsPerSecond: UInt64 = 1_000_000_000

    /// Parses a duration (see the type's syntax) into whole seconds, the fraction of a second
    /// dropped (towards zero).
    ///
    /// - Throws: `.malformed` for text outside the syntax, for a duration beyond Go's range
    ///   (±2⁶³ ns, about 292 years), or outside `range`.
    public static func seconds(_ text: some StringProtocol, in range: ClosedRange<Int64> = 0...Int64.max) throws(TDNSError) -> Int64 {
        let shown = String(text.prefix(maxText))
        guard let nanos = nanoseconds(Array(text.utf8)) else { throw .malformed("\"\(shown)\" is not a duration") }
        let seconds = nanos / Int64(nanosecondsPerSecond)
        guard range.contains(seconds) else {
            throw .malformed("duration \"\(shown)\" is outside \(format(seconds: range.lowerBound))…\(format(seconds: range.upperBound))")
        }
        return seconds
    }

    /// Nanoseconds, or nil. Mirrors Go's parser: integer arithmetic with overflow checks.
    private static func nanoseconds(_ b: [UInt8]) -> Int64? {
        guard !b.isEmpty, b.count <= maxText else { return nil }
        var i = 0
        var negative = false
        if b[0] == UInt8(ascii: "-") || b[0] == UInt8(ascii: "+") {
            negative = b[0] == UInt8(ascii: "-")
            i = 1
        }
        let body = b[i...]
        if body.elementsEqual("0".utf8) { return 0 }
        guard !body.isEmpty else { return nil }
        func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
        // A bare number of seconds.
        if body.allSatisfy(isDigit) {
            guard let s = Int64(String(decoding: body, as: UTF8.self)),
                  case (let n, false) = s.multipliedReportingOverflow(by: Int64(nanosecondsPerSecond)) else { return nil }
            return negative ? -n : n
        }
        var total: UInt64 = 0
        while i < b.count {
            // The number: digits, optionally a fraction (".5", "5.", "1.25").
            var whole: UInt64 = 0
            var sawDigits = false
            while i < b.count, isDigit(b[i]) {
                guard case (let w, false) = whole.multipliedReportingOverflow(by: 10),
                      case (let v, false) = w.addingReportingOverflow(UInt64(b[i] - 0x30)) else { return nil }
                whole = v
                sawDigits = true
                i += 1
            }
            var fraction: UInt64 = 0
            var scale: UInt64 = 1
            if i < b.count, b[i] == UInt8(ascii: ".") {
                i += 1
                while i < b.count, isDigit(b[i]) {
                    sawDigits = true
                    // Digits beyond what 64 bits can scale add nothing a second can show.
                    if scale < 1_000_000_000_000_000_000 {
                        fraction = fraction * 10 + UInt64(b[i] - 0x30)
                        scale *= 10
                    }
                    i += 1
                }
            }
            guard sawDigits else { return nil }
            // The unit: everything up to the next digit or dot.
            let unitStart = i
            while i < b.count, !isDigit(b[i]), b[i] != UInt8(ascii: ".") { i += 1 }
            guard let unit = unitNanoseconds[String(decoding: b[unitStart..<i], as: UTF8.self)] else { return nil }
            guard case (let value, false) = whole.multipliedReportingOverflow(by: unit) else { return nil }
            // fraction/scale of a unit; the quotient first, so that nothing overflows.
            let part = UInt64((Double(fraction) * (Double(unit) / Double(scale))).rounded(.down))
            guard case (let withFraction, false) = value.addingReportingOverflow(part),
                  case (let sum, false) = total.addingReportingOverflow(withFraction) else { return nil }
            total = sum
        }
        let limit = UInt64(Int64.max)
        if negative {
            guard total <= limit + 1 else { return nil }
            return total == limit + 1 ? Int64.min : -Int64(total)
        }
        guard total <= limit else { return nil }
        return Int64(total)
    }

    private static let unitNanoseconds: [String: UInt64] = [
        "ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
        "m": 60_000_000_000, "h": 3_600_000_000_000, "d": 86_400_000_000_000,
    ]
}
