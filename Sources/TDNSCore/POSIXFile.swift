#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The file-system operations the KRS's key store and state directory and the KDC's state
/// need, with the durability they promise: a file is either absent or complete (temporary
/// file in the same directory, fsync, rename, fsync of the directory), never half-written.
package enum POSIXFile {
    /// Reads a whole regular file of at most `limit` bytes.
    package static func read(_ path: String, limit: Int) throws(TDNSError) -> [UInt8] {
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

    /// Writes `bytes` to a new temporary file next to `path` and fsyncs it. Returns the
    /// temporary path; `commit` renames it into place.
    package static func writeTemporary(for path: String, bytes: [UInt8], mode: mode_t) throws(TDNSError) -> String {
        let (dir, base) = split(path)
        var template = Array("\(dir)/.\(base).tmp.XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { buf in
            buf.baseAddress.map { mkstemp($0) } ?? -1
        }
        guard fd >= 0 else { throw .storage("cannot create a temporary file in \(dir): \(errnoText())") }
        let tmp = template.withUnsafeBufferPointer { buf in
            buf.baseAddress.map { String(cString: $0) } ?? ""
        }
        var ok = fchmod(fd, mode) == 0
        var done = 0
        while ok && done < bytes.count {
            let n = bytes.withUnsafeBytes { buf in
                write(fd, buf.baseAddress.map { $0 + done }, bytes.count - done)
            }
            if n < 0, errno == EINTR { continue }
            ok = n > 0
            if ok { done += n }
        }
        ok = ok && fsync(fd) == 0
        let savedErrno = errno
        ok = close(fd) == 0 && ok
        guard ok else {
            unlink(tmp)
            errno = savedErrno
            throw .storage("writing \(tmp) failed: \(errnoText())")
        }
        return tmp
    }

    /// Renames a temporary file into place and makes the rename durable.
    package static func commit(temporary: String, to path: String) throws(TDNSError) {
        guard rename(temporary, path) == 0 else {
            let reason = errnoText()
            unlink(temporary)
            throw .storage("renaming into \(path) failed: \(reason)")
        }
        syncDirectory(of: path)
    }

    /// Writes a file atomically (temporary + fsync + rename + directory fsync).
    package static func writeAtomically(_ path: String, bytes: [UInt8], mode: mode_t) throws(TDNSError) {
        let tmp = try writeTemporary(for: path, bytes: bytes, mode: mode)
        try commit(temporary: tmp, to: path)
    }

    /// Appends one line with O_APPEND and fsyncs it (audit log, replay record).
    package static func appendLine(_ path: String, _ line: [UInt8], mode: mode_t) throws(TDNSError) {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, mode)
        guard fd >= 0 else { throw .storage("cannot open \(path): \(errnoText())") }
        defer { close(fd) }
        let data = line + [UInt8(ascii: "\n")]
        var done = 0
        while done < data.count {
            let n = data.withUnsafeBytes { buf in write(fd, buf.baseAddress.map { $0 + done }, data.count - done) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw .storage("appending to \(path) failed: \(errnoText())") }
            done += n
        }
        guard fsync(fd) == 0 else { throw .storage("fsync of \(path) failed: \(errnoText())") }
    }

    package static func remove(_ path: String) throws(TDNSError) {
        guard unlink(path) == 0 || errno == ENOENT else {
            throw .storage("removing \(path) failed: \(errnoText())")
        }
        syncDirectory(of: path)
    }

    package static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    package static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Creates a directory (and its parents) with `mode` if missing.
    package static func makeDirectory(_ path: String, mode: mode_t) throws(TDNSError) {
        if isDirectory(path) { return }
        guard !exists(path) else { throw .storage("\(path) exists and is not a directory") }
        let (parent, _) = split(path)
        if parent != path, !parent.isEmpty, !isDirectory(parent) { try makeDirectory(parent, mode: mode) }
        guard mkdir(path, mode) == 0 || errno == EEXIST else {
            throw .storage("cannot create directory \(path): \(errnoText())")
        }
    }

    /// Names of the entries of a directory (no "." or "..").
    package static func list(_ path: String) throws(TDNSError) -> [String] {
        guard let dir = opendir(path) else { throw .storage("cannot read directory \(path): \(errnoText())") }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            // d_name is a NUL-terminated C string inside a fixed-size array; read it with
            // strlen semantics only (the bytes after the NUL are uninitialised).
            let name = withUnsafePointer(to: &entry.pointee.d_name) { tuple in
                tuple.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: tuple.pointee)) {
                    String(cString: $0)
                }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Runs `body` holding an exclusive `flock` on `path` (created 0600): serializes
    /// processes and instances that share a directory.
    package static func locked<R>(_ path: String, _ body: () throws(TDNSError) -> R) throws(TDNSError) -> R {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .storage("cannot open \(path): \(errnoText())") }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw .storage("cannot lock \(path): \(errnoText())") }
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    /// (seconds, nanoseconds) of the last modification, or nil.
    package static func modificationTime(_ path: String) -> (Int, Int)? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return (st.st_mtim.tv_sec, st.st_mtim.tv_nsec)
    }

    /// The inode number, or 0 when the file does not exist.
    package static func inode(_ path: String) -> Int {
        var st = stat()
        guard stat(path, &st) == 0 else { return 0 }
        return Int(truncatingIfNeeded: st.st_ino)
    }

    /// `path` made absolute against the working directory.
    package static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buf = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buf, buf.count) != nil else { return path }
        guard let cwd = buf.withUnsafeBufferPointer({ $0.baseAddress.map { String(cString: $0) } }) else { return path }
        return cwd == "/" ? "/\(path)" : "\(cwd)/\(path)"
    }

    private static func syncDirectory(of path: String) {
        let (dir, _) = split(path)
        let fd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            _ = fsync(fd)
            close(fd)
        }
    }

    package static func split(_ path: String) -> (directory: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let dir = String(path[..<slash])
        return (dir.isEmpty ? "/" : dir, String(path[path.index(after: slash)...]))
    }

    package static func errnoText() -> String {
        String(cString: strerror(errno))
    }
}
