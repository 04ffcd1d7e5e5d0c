import TDNSCore

/// Reads the key line of a tdns key file: lines whose first non-blank character is `#` are
/// comments, blank lines are skipped, and exactly one line of content must remain
/// (surrounding whitespace removed). Returns nil when there is no such single line.
func keyFileContent(_ text: [UInt8]) -> ArraySlice<UInt8>? {
    var found: ArraySlice<UInt8>? = nil
    for rawLine in text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
        let line = trimmingASCIIWhitespace(rawLine)
        if line.isEmpty || line.first == UInt8(ascii: "#") { continue }
        if found != nil { return nil }
        found = line
    }
    return found
}

func trimmingASCIIWhitespace(_ s: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
    func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0d || c == 0x0a || c == 0x0b || c == 0x0c }
    var lo = s.startIndex
    var hi = s.endIndex
    while lo < hi, isSpace(s[lo]) { lo += 1 }
    while hi > lo, isSpace(s[hi - 1]) { hi -= 1 }
    return s[lo..<hi]
}

/// Overwrites a buffer that held secret material. Best effort: Swift may have made copies
/// elsewhere, but the buffers we own are cleared before they are released.
@inline(never)
public func zeroize(_ bytes: inout [UInt8]) {
    bytes.withUnsafeMutableBytes { raw in
        guard let base = raw.baseAddress else { return }
        // A volatile-style write the optimizer cannot drop: memset through an opaque call.
        _zeroizeBytes(base, raw.count)
    }
}

@inline(never)
func _zeroizeBytes(_ p: UnsafeMutableRawPointer, _ n: Int) {
    for i in 0..<n { p.storeBytes(of: 0, toByteOffset: i, as: UInt8.self) }
}
