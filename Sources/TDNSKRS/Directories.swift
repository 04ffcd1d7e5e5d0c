#if canImport(Glibc)
import Glibc
#endif
import TDNSCore

/// The node's own directories (`state_dir`, `key_dir`): private keys and the replay record
/// live there, so nobody but the node's user may list or enter them (contract §4).
enum PrivateDirectory {
    /// Creates `path` with mode 0700 when it is missing (parents too), or tightens an existing
    /// directory whose group or other bits are set to 0700. Returns what was done, for the
    /// host's log; nothing when the directory was already private.
    ///
    /// A directory the node cannot tighten (another user's) is reported as a warning and left
    /// as it is: refusing to start would take the host's keys away for a mode bit.
    ///
    /// - Throws: `.config` naming `setting` when `path` exists but is not a directory, or
    ///   cannot be created.
    static func prepare(_ path: String, setting: String) throws(TDNSError) -> [(KRSLogLevel, String)] {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let reason = errnoText()
            guard errno == ENOENT else { throw .config("\(setting): \(path): \(reason)") }
            do {
                try POSIXFile.makeDirectory(path, mode: 0o700)
            } catch {
                throw .config("\(setting): \(error.reason)")
            }
            // mkdir applied the umask, which can only have taken bits away; 0700 exactly.
            _ = chmod(path, 0o700)
            return [(.info, "\(setting): created \(path) with mode 0700")]
        }
        guard st.st_mode & S_IFMT == S_IFDIR else { throw .config("\(setting): \(path) is not a directory") }
        let mode = st.st_mode & 0o7777
        guard mode & 0o077 != 0 else { return [] }
        let shown = String(mode, radix: 8)
        guard chmod(path, 0o700) == 0 else {
            return [(.warning, "\(setting): \(path) has mode 0\(shown) (group/other may read it) and cannot be tightened to 0700: \(errnoText())")]
        }
        return [(.warning, "\(setting): \(path) had mode 0\(shown); tightened to 0700 (private keys and the node's state live there)")]
    }

    private static func errnoText() -> String {
        String(cString: strerror(errno))
    }
}
