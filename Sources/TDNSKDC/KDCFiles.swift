#if canImport(Glibc)
import Glibc
#endif
import TDNSCore

/// File operations of the state directory: whole-file reads with a size cap, atomic replaces
/// (temporary file in the same directory, fsync, rename, directory fsync), directories with a
/// mode, and an exclusive `flock`.
enum KDCFiles {
    static func read(_ path: String, limit: Int) throws(TDNSError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .storage("cannot open \(path): \(errnoText())") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw .storage("\(path) is not a regular file")
        }
        guard let size = Int(exactly: st.st_size), size <= limit else {
            throw .tooBig("\(path) is larger than \(limit) bytes")
        }
        var out = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = out.withUnsafeMutableBytes { buf in
                Glibc.read(fd, buf.baseAddress.map { $0 + done }, size - done)
            }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw .storage("reading \(path) failed: \(errnoText())") }
            done += n
        }
        return out
    }

    /// Replaces `path` with `bytes`, atomically and durably, with file mode `mode`.
    static func writeAtomically(_ path: String, bytes: [UInt8], mode: mode_t) throws(TDNSError) {
        let (dir, base) = split(path)
        var template = Array("\(dir)/.\(base).tmp.XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { buf in buf.baseAddress.map { mkstemp($0) } ?? -1 }
        guard fd >= 0 else { throw .storage("cannot create a temporary file in \(dir): \(errnoText())") }
        let tmp = template.withUnsafeBufferPointer { buf in buf.baseAddress.map { String(cString: $0) } ?? "" }
        var ok = fchmod(fd, mode) == 0
        var done = 0
        while ok && done < bytes.count {
            let n = bytes.withUnsafeBytes { buf in write(fd, buf.baseAddress.map { $0 + done }, bytes.count - done) }
            if n < 0, errno == EINTR { continue }
            ok = n > 0
            if ok { done += n }
        }
        ok = ok && fsync(fd) == 0
        let saved = errno
        ok = close(fd) == 0 && ok
        guard ok else {
            unlink(tmp)
            errno = saved
            throw .storage("writing \(tmp) failed: \(errnoText())")
        }
        guard rename(tmp, path) == 0 else {
            let reason = errnoText()
            unlink(tmp)
            throw .storage("renaming into \(path) failed: \(reason)")
        }
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
    }

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    static func modificationTime(_ path: String) -> (Int, Int)? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return (st.st_mtim.tv_sec, st.st_mtim.tv_nsec)
    }

    static func inode(_ path: String) -> Int {
        var st = stat()
        guard stat(path, &st) == 0 else { return 0 }
        return Int(truncatingIfNeeded: st.st_ino)
    }

    static func makeDirectory(_ path: String, mode: mode_t) throws(TDNSError) {
        var st = stat()
        if stat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR else { throw .storage("\(path) exists and is not a directory") }
            return
        }
        let (parent, _) = split(path)
        if parent != path, !parent.isEmpty, !exists(parent) { try makeDirectory(parent, mode: 0o755) }
        guard mkdir(path, mode) == 0 || errno == EEXIST else {
            throw .storage("cannot create directory \(path): \(errnoText())")
        }
    }

    static func remove(_ path: String) {
        unlink(path)
    }

    /// Runs `body` holding an exclusive `flock` on `path` (created 0600).
    static func locked<R>(_ path: String, _ body: () throws(TDNSError) -> R) throws(TDNSError) -> R {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .storage("cannot open \(path): \(errnoText())") }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw .storage("cannot lock \(path): \(errnoText())") }
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    static func split(_ path: String) -> (directory: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let dir = String(path[..<slash])
        return (dir.isEmpty ? "/" : dir, String(path[path.index(after: slash)...]))
    }

    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buf = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buf, buf.count) != nil else { return path }
        guard let cwd = buf.withUnsafeBufferPointer({ $0.baseAddress.map { String(cString: $0) } }) else { return path }
        return cwd == "/" ? "/\(path)" : "\(cwd)/\(path)"
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}
