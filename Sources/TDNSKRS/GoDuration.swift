import TDNSCore

/// Go's `time.Duration` text form (`"5m0s"`, `"720h0m0s"`, `"1.5h"`, `"300ms"`), which the
/// KDC uses for `distribution_ttl` and `retire_time` (PROTOCOL §9.1, §13).
public enum GoDuration {
    /// Parses a Go duration into whole seconds (fractions truncated). Negative durations and
    /// values beyond 100 years are refused.
    public static func seconds(_ text: String) throws(TDNSError) -> Int64 {
        var bytes = Array(text.utf8)[...]
        guard !bytes.isEmpty, bytes.count <= 64 else { throw .malformed("bad duration \"\(text)\"") }
        if bytes.first == UInt8(ascii: "+") { bytes = bytes.dropFirst() }
        if bytes.elementsEqual("0".utf8) { return 0 }
        var totalNanos: Double = 0
        while !bytes.isEmpty {
            let number = bytes.prefix { ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: ".") }
            guard !number.isEmpty, let value = Double(String(decoding: number, as: UTF8.self)) else {
                throw .malformed("bad duration \"\(text)\"")
            }
            bytes = bytes.dropFirst(number.count)
            let unit = bytes.prefix { !(($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: ".")) }
            bytes = bytes.dropFirst(unit.count)
            let scale: Double
            switch String(decoding: unit, as: UTF8.self) {
            case "ns": scale = 1
            case "us", "µs", "μs": scale = 1e3
            case "ms": scale = 1e6
            case "s": scale = 1e9
            case "m": scale = 60e9
            case "h": scale = 3600e9
            default: throw .malformed("bad duration unit in \"\(text)\"")
            }
            totalNanos += value * scale
        }
        let seconds = totalNanos / 1e9
        guard seconds.isFinite, seconds >= 0, seconds <= 100 * 365 * 86400 else {
            throw .malformed("duration \"\(text)\" out of range")
        }
        return Int64(seconds)
    }
}
