#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import TDNSCore

/// `kdc.log` in the state directory: one line per change of the KDC's nodes, enrollments,
/// policy and distributions (`2026-12-01T10:00:00Z info: Node ns1.example.com. enrolled with
/// backend: hpke`), appended by every `tdns-kdc` process with O_APPEND (one `write` per line,
/// so lines of concurrent processes do not interleave), mode 0600. Never key material (STYLE
/// rule 11). NOTIFY attempts and refused requests are not in it (they stay on `serve`'s
/// standard error, rate-limited): anyone can cause those.
///
/// Bounded: when the file is larger than ``maxSize`` before a line is appended it becomes
/// `kdc.log.1` (replacing the previous one), so the two files never exceed about twice that.
/// A failure to write the event log is not a failure of the change (that is already in
/// `kdc.json`); it is reported once on standard error.
public struct KDCEventLog: Sendable {
    public static let fileName = "kdc.log"
    public static let maxSize = 16 * 1024 * 1024

    public let path: String

    public init(directory: String) { path = "\(directory)/\(Self.fileName)" }

    public func append(level: KDCLog.Level, _ message: String, at now: Int64) {
        var st = stat()
        if stat(path, &st) == 0, Int(st.st_size) > Self.maxSize {
            _ = rename(path, path + ".1")
        }
        let text = String(message.map { $0 == "\n" || $0 == "\r" ? " " : $0 })
        let line = Array("\(RFC3339.format(now)) \(level.rawValue): \(text)\n".utf8)
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return Self.reportOnce(path) }
        defer { close(fd) }
        let n = line.withUnsafeBytes { write(fd, $0.baseAddress, line.count) }
        if n != line.count { Self.reportOnce(path) }
    }

    /// Reads the lines (tests, `node show`): the last `limit` lines of the current file.
    public func lines(limit: Int = 10_000) -> [String] {
        guard let bytes = try? POSIXFile.read(path, limit: Self.maxSize + 65536) else { return [] }
        let all = bytes.split(separator: 0x0A).map { String(decoding: $0, as: UTF8.self) }
        return Array(all.suffix(limit))
    }

    private static let reported = Atomic<Bool>(false)

    private static func reportOnce(_ path: String) {
        guard !reported.exchange(true, ordering: .relaxed) else { return }
        let line = Array("tdns-kdc: warning: cannot append to \(path): \(POSIXFile.errnoText())\n".utf8)
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, line.count) }
    }
}
