#if canImport(Glibc)
import Glibc
#endif
import Testing
import TDNSTestSupport

@testable import TDNSCore

/// The time module: civil time over the whole Int64 range, DNS/BIND timestamps, RFC 3339 and
/// Go durations. Known values come from Python's calendar.timegm (recorded below) and Go's
/// documented limits; random samples are checked against libc's gmtime_r, an independent
/// implementation.
@Suite("Time")
struct TimeTests {
    /// (Unix seconds, RFC 3339) — Unix times by Python's `calendar.timegm`.
    static let known: [(Int64, String)] = [
        (0, "1970-01-01T00:00:00Z"),
        (-1, "1969-12-31T23:59:59Z"),
        (951_782_400, "2000-02-29T00:00:00Z"),  // divisible by 400: a leap year
        (1_709_164_800, "2024-02-29T00:00:00Z"),
        (4_107_542_399, "2100-02-28T23:59:59Z"),  // divisible by 100: not a leap year
        (4_107_542_400, "2100-03-01T00:00:00Z"),
        (-2_208_988_800, "1900-01-01T00:00:00Z"),
        (-2_203_891_200, "1900-03-01T00:00:00Z"),
        (-11_670_998_400, "1600-02-29T00:00:00Z"),
        (2_147_483_648, "2038-01-19T03:14:08Z"),  // one past the signed 32-bit range
        (253_402_300_799, "9999-12-31T23:59:59Z"),
        (-62_135_596_800, "0001-01-01T00:00:00Z"),
        // The ends of Int64 (the limits Go's time package documents for Unix seconds).
        (Int64.max, "292277026596-12-04T15:30:07Z"),
        (Int64.min, "-292277022657-01-27T08:29:52Z"),
    ]

    @Test("civil time and RFC 3339 of known instants, incl. leap years, negative and extreme times", arguments: known)
    func knownInstants(_ unix: Int64, _ text: String) {
        #expect(RFC3339.format(unix) == text)
        #expect(CivilTime(unix: unix).unix == unix)
        if text.count == 20 { #expect(RFC3339.parse(text) == unix) }
    }

    @Test("leap years: every fourth, not every hundredth, every four hundredth")
    func leapYears() {
        #expect(CivilTime.isLeapYear(2024) && CivilTime.isLeapYear(2000) && CivilTime.isLeapYear(1600))
        #expect(!CivilTime.isLeapYear(2023) && !CivilTime.isLeapYear(1900) && !CivilTime.isLeapYear(2100))
        #expect(CivilTime(year: 2024, month: 2, day: 29) != nil && CivilTime(year: 2023, month: 2, day: 29) == nil)
        #expect(CivilTime(year: 2100, month: 2, day: 29) == nil && CivilTime(year: 2000, month: 2, day: 29) != nil)
        for bad in [(2026, 13, 1), (2026, 0, 1), (2026, 4, 31), (2026, 1, 0), (10000, 1, 1), (-1, 1, 1)] {
            #expect(CivilTime(year: Int64(bad.0), month: Int64(bad.1), day: Int64(bad.2)) == nil, "\(bad)")
        }
        #expect(CivilTime(year: 2026, month: 1, day: 1, hour: 24) == nil)
        #expect(CivilTime(year: 2026, month: 1, day: 1, minute: 60) == nil)
        #expect(CivilTime(year: 2026, month: 1, day: 1, second: 60) == nil)
    }

    @Test("agrees with libc's gmtime_r on 20,000 random instants, years 1…9999")
    func againstGmtime() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let unix = Int64.random(in: -62_135_596_800...253_402_300_799, using: &generator)
            var t = time_t(unix)
            var tm = tm()
            gmtime_r(&t, &tm)
            let c = CivilTime(unix: unix)
            let same = c.year == Int64(tm.tm_year) + 1900 && c.month == Int64(tm.tm_mon) + 1 && c.day == Int64(tm.tm_mday)
                && c.hour == Int64(tm.tm_hour) && c.minute == Int64(tm.tm_min) && c.second == Int64(tm.tm_sec)
            #expect(same, "\(unix)")
            #expect(RFC3339.parse(RFC3339.format(unix)) == unix)
            if !same { return }
        }
    }

    @Test("DNS/BIND timestamps: YYYYMMDDHHMMSS, clamped to the unsigned 32-bit range")
    func dnsTime() {
        #expect(DNSTime.format(0) == "19700101000000")
        #expect(DNSTime.format(1_700_000_000) == "20231114221320")
        #expect(DNSTime.format(951_782_400) == "20000229000000")
        #expect(DNSTime.format(4_107_542_399) == "21000228235959")
        #expect(DNSTime.format(4_107_542_400) == "21000301000000")
        #expect(DNSTime.format(Int64(UInt32.max)) == "21060207062815")
        #expect(DNSTime.format(-5) == "19700101000000")
        #expect(DNSTime.format(Int64.max) == "21060207062815")
        #expect(DNSTime.format(Int64.min) == "19700101000000")
        #expect(DNSTime.parse("20000229000000") == 951_782_400)
        #expect(DNSTime.parse("21060207062815") == Int64(UInt32.max))
        for t: Int64 in [0, 1, 59, 86_399, 951_782_400, 1_769_509_199, Int64(UInt32.max)] {
            #expect(DNSTime.parse(DNSTime.format(t)) == t)
        }
        for bad in ["", "2026010100000", "202601010000000", "20261301000000", "20260230000000", "20260101240000",
                    "20260101006000", "20260101000060", "2026010100000x", "+2026010100000", "２0260101000000"] {
            #expect(DNSTime.parse(bad) == nil, "\(bad)")
        }
    }

    @Test("RFC 3339 as Go's time.Parse(time.RFC3339) reads it")
    func rfc3339Parse() {
        #expect(RFC3339.parse("2026-01-27T10:19:59Z") == 1_769_509_199)
        #expect(RFC3339.parse("2026-01-27t10:19:59z") == 1_769_509_199)
        #expect(RFC3339.parse("2026-01-27T11:19:59+01:00") == 1_769_509_199)
        #expect(RFC3339.parse("2026-01-27T05:49:59-04:30") == 1_769_509_199)
        #expect(RFC3339.parse("2026-01-27T10:19:59.123456789Z") == 1_769_509_199)
        #expect(RFC3339.parse("1969-12-31T23:59:59Z") == -1)
        for bad in ["2026-02-30T10:19:59Z", "2026-01-27 10:19:59Z", "2026-01-27T10:19:59", "2026-01-27T10:19:59.Z",
                    "2026-01-27T10:19:59+0100", "2026-01-27T10:19:59+24:00", "2026-01-27T10:19:60Z", "26-01-27T10:19:59Z",
                    "2026-01-27T10:19:59Zjunk", ""] {
            #expect(RFC3339.parse(bad) == nil, "\(bad)")
        }
    }

    @Test("clocks: a fixed clock is fixed, the system clock is near libc's time(), monotonic time does not go back")
    func clocks() {
        #expect(WallClock.fixed(42).now == 42)
        #expect(abs(WallClock.system.now - Int64(time(nil))) <= 1)
        let a = MonotonicClock.now(), b = MonotonicClock.now()
        #expect(b >= a)
    }

    @Test("milliseconds: the system clock's agree with its seconds; a seconds clock gives now·1000, saturating; floor for negatives")
    func milliseconds() {
        let ms = WallClock.system.nowMilliseconds
        #expect(abs(ms / 1000 - Int64(time(nil))) <= 1)
        #expect(WallClock.fixed(42).nowMilliseconds == 42_000)
        #expect(WallClock.fixed(.max).nowMilliseconds == .max && WallClock.fixed(.min).nowMilliseconds == .min)
        let m = WallClock.milliseconds { 1_769_509_199_999 }
        #expect(m.now == 1_769_509_199 && m.nowMilliseconds == 1_769_509_199_999)
        #expect(WallClock.milliseconds { -1 }.now == -1 && WallClock.milliseconds { -1000 }.now == -1)
        #expect(WallClock.milliseconds { -1001 }.now == -2)
    }
}

/// Go durations: one syntax for manifests, KRS settings and the KDC's options.
@Suite("Go durations")
struct GoDurationTests {
    /// Go's `time.Duration.String()` of whole seconds.
    static let formatted: [(Int64, String)] = [
        (0, "0s"), (1, "1s"), (45, "45s"), (60, "1m0s"), (300, "5m0s"), (3600, "1h0m0s"), (5400, "1h30m0s"),
        (720 * 3600, "720h0m0s"), (86_400 + 1, "24h0m1s"), (-90, "-1m30s"), (-1, "-1s"),
    ]

    @Test("format as Go's Duration.String()", arguments: formatted)
    func format(_ seconds: Int64, _ text: String) throws {
        #expect(GoDuration.format(seconds: seconds) == text)
        #expect(try GoDuration.seconds(text, in: Int64.min...Int64.max) == seconds)
    }

    /// Go's `time.ParseDuration` examples (its package tests), in whole seconds (fractions
    /// dropped toward zero), plus the two forms operators type: `d` and bare seconds.
    static let parsed: [(String, Int64)] = [
        ("0", 0), ("-0", 0), ("+0", 0), ("5s", 5), ("30s", 30), ("1478s", 1478), ("-5s", -5), ("+5s", 5),
        ("5.0s", 5), ("5.6s", 5), ("5.s", 5), (".5s", 0), ("1.004s", 1), ("100.00100s", 100),
        ("10ns", 0), ("11us", 0), ("12µs", 0), ("12μs", 0), ("13ms", 0), ("15m", 900), ("16h", 57_600),
        ("3h30m", 12_600), ("10.5s4m", 250), ("-2m3.4s", -123), ("1h2m3s4ms5us6ns", 3723),
        ("39h9m14.425s", 140_954), ("52763797000ns", 52), ("0.3333333333333333333h", 1199), ("1.5h", 5400),
        ("9007199254740993ns", 9_007_199), ("9223372036854775807ns", 9_223_372_036),
        ("9223372036854775.807us", 9_223_372_036), ("9223372036s854ms775us807ns", 9_223_372_036),
        ("-9223372036854775808ns", -9_223_372_036), ("720h0m0s", 2_592_000),
        ("7d", 604_800), ("1d12h", 129_600), ("90", 90), ("-90", -90),
    ]

    @Test("parse the one syntax", arguments: parsed)
    func parse(_ text: String, _ seconds: Int64) throws {
        #expect(try GoDuration.seconds(text, in: Int64.min...Int64.max) == seconds)
    }

    static let refused: [String] = [
        "", "-", "+", "s", ".", "-.", ".s", "+.s", "5x", "1y", "5 s", " 5s", "5s ", "1h-5m", "1e3s", "0x10s",
        "3000000h", "9223372036854775808ns", "9223372036854775.808us", "9223372036854ms775us808ns",
        "99999999999999999999s", String(repeating: "1", count: 65) + "s",
    ]

    @Test("refuse what is not a duration, and what exceeds Go's ±2⁶³ ns", arguments: refused)
    func refuse(_ text: String) {
        expectCode(.malformed, "\(text)") { _ = try GoDuration.seconds(text, in: Int64.min...Int64.max) }
    }

    @Test("the caller's range: non-negative by default; outside it is .malformed")
    func ranges() throws {
        expectCode(.malformed) { _ = try GoDuration.seconds("-1s") }
        #expect(try GoDuration.seconds("0s") == 0)
        expectCode(.malformed) { _ = try GoDuration.seconds("0s", in: 1...10) }
        expectCode(.malformed) { _ = try GoDuration.seconds("11s", in: 1...10) }
        let e = #expect(throws: TDNSError.self) { try GoDuration.seconds("11s", in: 1...10) }
        #expect(e?.reason == "duration \"11s\" is outside 1s…10s")
    }

    @Test("round trip: parse(format(s)) == s over Go's whole range")
    func roundTrip() throws {
        var generator = SystemRandomNumberGenerator()
        let goRange: ClosedRange<Int64> = -9_223_372_036...9_223_372_036
        var samples: [Int64] = [goRange.lowerBound, goRange.upperBound, 0, 1, -1, 59, 60, 3599, 3600, 86_399]
        for _ in 0..<5000 { samples.append(Int64.random(in: goRange, using: &generator)) }
        for s in samples {
            #expect(try GoDuration.seconds(GoDuration.format(seconds: s), in: Int64.min...Int64.max) == s, "\(s)")
        }
    }
}
