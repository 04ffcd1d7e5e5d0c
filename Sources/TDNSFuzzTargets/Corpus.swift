#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Corpus files on disk: what the replayer and the replay test run through a target.
public enum FuzzCorpus {
    /// The regular files of `path` (itself, if it is a file; its direct entries, sorted, if it
    /// is a directory; dot files skipped). A missing path gives no files.
    public static func files(at path: String) -> [String] {
        var isDirectory = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return [] }
        guard isDirectory else { return [path] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { "\(path)/\($0)" }.filter {
            var dir = false
            return FileManager.default.fileExists(atPath: $0, isDirectory: &dir) && !dir
        }
    }

    /// The bytes of one file.
    public static func read(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Writes `bytes` to `path`, creating the directory.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: url)
    }
}
