#if canImport(Glibc)
import Glibc
#endif

/// Runs a server's control tool (`rndc`, `keymgr`, `knotc`, `dnssec-signzone`, `nsd-control`)
/// the way a host process can afford to: `posix_spawn` of an absolute path with an argument
/// vector (no shell, so zone names are never interpreted), stdin from /dev/null, stdout and
/// stderr captured together up to a bound, a deadline after which the child is killed, and a
/// clean signal mask — host threads (named's, knotd's) block signals the tool needs.
package enum Subprocess {
    package struct Outcome: Sendable {
        /// Exit status, or nil when the child was killed by a signal or not reaped by us.
        package var exitStatus: Int32?
        package var timedOut: Bool
        /// The host ignores SIGCHLD: the child was reaped by the kernel, its status is unknown.
        package var statusLost = false
        /// The first `outputLimit` bytes of stdout+stderr, trailing whitespace removed.
        package var output: String
        package var succeeded: Bool { exitStatus == 0 && !timedOut }

        /// One line for logs and reports: `ok`, `exit 1: <first line>`, `timed out after 10 s`.
        package func summary(timeout: Double) -> String {
            let first = output.split(separator: "\n").last(where: { !$0.isEmpty }).map(String.init) ?? ""
            if timedOut { return "timed out after \(Int(timeout)) s" + (first.isEmpty ? "" : ": \(first)") }
            if statusLost { return "exit status unknown: the host process ignores SIGCHLD" + (first.isEmpty ? "" : ": \(first)") }
            if let s = exitStatus { return s == 0 ? "ok" : "exit \(s)" + (first.isEmpty ? "" : ": \(first)") }
            return "killed by a signal" + (first.isEmpty ? "" : ": \(first)")
        }
    }

    package static let outputLimit = 4096

    /// Runs `argv[0]` (an absolute path) with `argv`. Throws only when the child cannot be
    /// started; everything after that is in the outcome.
    package static func run(_ argv: [String], timeout: Double, cancelled: () -> Bool = { false }) throws(TDNSError) -> Outcome {
        guard let path = argv.first, path.hasPrefix("/") else {
            throw .config("\(argv.first ?? "(nothing)"): a command must be given as an absolute path")
        }
        var fds: [Int32] = [-1, -1]
        // (pipe2 is not imported from Glibc.) The end is read until the child is reaped, not
        // until EOF, so a child started meanwhile by another thread that inherits the write end
        // before FD_CLOEXEC is set costs nothing.
        guard pipe(&fds) == 0 else { throw .internalFailure("pipe: \(POSIXFile.errnoText())") }
        defer { close(fds[0]) }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)

        var actions = posix_spawn_file_actions_t()
        var attr = posix_spawnattr_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawnattr_init(&attr)
        defer {
            posix_spawn_file_actions_destroy(&actions)
            posix_spawnattr_destroy(&attr)
        }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        var empty = sigset_t()
        var defaults = sigset_t()
        sigemptyset(&empty)
        sigemptyset(&defaults)
        for s in [SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for p in cArgs { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attr, &cArgs, environ)
        close(fds[1])
        guard rc == 0 else { throw .config("\(path): cannot run: \(String(cString: strerror(rc)))") }

        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1024)
        func drain() {
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
                guard n > 0 else { return }
                let room = outputLimit - output.count
                if room > 0 { output.append(contentsOf: buffer[0..<min(n, room)]) }
            }
        }
        let deadline = MonotonicClock.now() + timeout
        var status: Int32 = 0
        var outcome = Outcome(exitStatus: nil, timedOut: false, output: "")
        while true {
            drain()
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid {
                // WIFEXITED / WEXITSTATUS, which Swift does not import (they are macros).
                if status & 0x7f == 0 { outcome.exitStatus = (status >> 8) & 0xff }
                break
            }
            if r < 0 && errno != EINTR {
                // ECHILD: the host ignores SIGCHLD, so the kernel reaped the child and its exit
                // status is lost; treated as a failure (the caller puts its changes back).
                outcome.statusLost = true
                break
            }
            if MonotonicClock.now() > deadline || cancelled() {
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                outcome.timedOut = true
                break
            }
            var ts = timespec(tv_sec: 0, tv_nsec: 10_000_000)
            nanosleep(&ts, nil)
        }
        drain()
        var text = String(decoding: output, as: UTF8.self)
        while let last = text.last, last.isWhitespace { text.removeLast() }
        outcome.output = text
        return outcome
    }
}
