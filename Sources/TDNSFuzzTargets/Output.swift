#if canImport(Glibc)
import Glibc
#endif

/// Unbuffered diagnostics on stderr (libFuzzer owns stdout's buffering and kills the process
/// right after a crash, so nothing is left in a buffer).
public enum FuzzOutput {
    public static func standardError(_ text: String) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { buf in
                write(2, buf.baseAddress.map { $0 + offset }, buf.count - offset)
            }
            if n <= 0 { return }
            offset += n
        }
    }
}

/// `TDNS_FUZZ_DEBUG=1`: the harnesses say how far each input got (for checking that seeds
/// reach the code they are meant to reach; far too slow for fuzzing).
enum FuzzDebug {
    static let enabled = getenv("TDNS_FUZZ_DEBUG") != nil

    static func note(_ text: @autoclosure () -> String) {
        if enabled { FuzzOutput.standardError("  \(text())\n") }
    }
}
