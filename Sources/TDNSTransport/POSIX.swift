#if canImport(Glibc)
import Glibc
#else
#error("TDNSTransport uses Linux socket and pthread APIs (SOCK_CLOEXEC, MSG_NOSIGNAL, accept4)")
#endif
import Synchronization
import TDNSCore

// The thin layer over POSIX sockets, poll(2) and pthreads that the server and the clients share.
// Every descriptor is created close-on-exec and non-blocking (the host may fork and exec, and a
// blocking call could not be interrupted by stop()); every send uses MSG_NOSIGNAL (a SIGPIPE
// inside named or knotd would kill the server).

/// A point in monotonic time after which an operation gives up.
struct Deadline {
    let at: Double
    /// When given and stopped, the deadline counts as expired; waits are cut into short
    /// slices so that the stop is noticed promptly.
    let stop: StopToken?

    init(after seconds: Double, stop: StopToken? = nil) {
        at = MonotonicClock.now() + seconds
        self.stop = stop
    }

    private init(at: Double) {
        self.at = at
        stop = nil
    }

    static let never = Deadline(at: .infinity)

    var expired: Bool { stop?.isStopped == true || MonotonicClock.now() >= at }

    /// Milliseconds left, rounded up, for poll(2); 0 when expired, capped at `cap` (and at
    /// ``StopToken/pollSlice`` when stoppable).
    func pollTimeout(cap: Int32 = 60_000) -> Int32 {
        let cap = stop == nil ? cap : min(cap, StopToken.pollSlice)
        let left = (at - MonotonicClock.now()) * 1000
        guard left > 0, stop?.isStopped != true else { return 0 }
        guard left < Double(cap) else { return cap }
        return Int32(left.rounded(.up))
    }
}

/// Checks a caller's timeout: finite and positive; capped at a day so that arithmetic on it
/// cannot overflow.
func validatedTimeout(_ seconds: Double, _ what: String = "timeout") throws(TDNSError) -> Double {
    guard seconds.isFinite, seconds > 0 else { throw .malformed("\(what) must be a positive number of seconds") }
    return min(seconds, 86_400)
}

func errnoText(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}

/// poll(2) that reports EINTR as "nothing ready" so that callers simply re-check their deadline.
func pollDescriptors(_ fds: inout [pollfd], timeout: Int32) -> Int32 {
    let n = fds.withUnsafeMutableBufferPointer { buf in
        poll(buf.baseAddress, nfds_t(buf.count), timeout)
    }
    if n < 0, errno == EINTR { return 0 }
    return n
}

let pollIn = Int16(POLLIN)
let pollOut = Int16(POLLOUT)
let pollFailure = Int16(POLLERR | POLLHUP | POLLNVAL)

/// Sleeps without touching signals (poll with no descriptors).
func sleepMilliseconds(_ ms: Int32) {
    _ = poll(nil, 0, ms)
}

// MARK: sockets

enum SocketKind {
    case datagram, stream

    var rawType: Int32 {
        switch self {
        case .datagram: Int32(SOCK_DGRAM.rawValue)
        case .stream: Int32(SOCK_STREAM.rawValue)
        }
    }
}

/// A new close-on-exec, non-blocking socket; IPv6 sockets are IPv6-only so that a peer's
/// address is never an IPv4-mapped one (the KDC matches peers by IP, PROTOCOL §10.6).
func makeSocket(_ family: SocketAddress.Family, _ kind: SocketKind) throws(TDNSError) -> Int32 {
    let domain = family == .ipv4 ? AF_INET : AF_INET6
    let fd = socket(domain, kind.rawType | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
    guard fd >= 0 else { throw .network("cannot create a socket: \(errnoText())") }
    if family == .ipv6 {
        _ = setIntOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1)
    }
    if kind == .stream {
        // Answers go out as whole frames; Nagle would only delay the next pipelined one.
        _ = setIntOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
    }
    return fd
}

@discardableResult
func setIntOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) -> Bool {
    var v = value
    return setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) == 0
}

func closeDescriptor(_ fd: Int32) {
    // Linux releases the descriptor even when close reports EINTR: never retry.
    if fd >= 0 { _ = close(fd) }
}

func bindSocket(_ fd: Int32, to address: SocketAddress) throws(TDNSError) {
    let rc = address.withSockAddr { sa, len in bind(fd, sa, len) }
    guard rc == 0 else { throw .network("cannot bind to \(address): \(errnoText())") }
}

func localAddress(of fd: Int32) -> SocketAddress? {
    var storage = sockaddr_storage()
    var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let rc = withUnsafeMutablePointer(to: &storage) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    guard rc == 0 else { return nil }
    return SocketAddress(storage: storage)
}

/// Connects a new non-blocking TCP socket to `server` (from `source` when given) before
/// `deadline`. The caller owns the returned descriptor.
func connectTCP(to server: SocketAddress, from source: SocketAddress?, deadline: Deadline) throws(TDNSError) -> Int32 {
    if let source, source.family != server.family {
        throw .config("source \(source) and server \(server) are of different address families")
    }
    let fd = try makeSocket(server.family, .stream)
    do throws(TDNSError) {
        if let source { try bindSocket(fd, to: source) }
        let rc = server.withSockAddr { sa, len in connect(fd, sa, len) }
        if rc != 0 {
            let e = errno
            guard e == EINPROGRESS || e == EINTR else { throw .network("connecting to \(server) failed: \(errnoText(e))") }
            var fds = [pollfd(fd: fd, events: pollOut, revents: 0)]
            while true {
                if deadline.expired { throw .timeout("connecting to \(server) timed out") }
                if pollDescriptors(&fds, timeout: deadline.pollTimeout()) > 0 { break }
            }
            var soError: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len) == 0 else {
                throw .network("connecting to \(server) failed: \(errnoText())")
            }
            guard soError == 0 else { throw .network("connecting to \(server) failed: \(errnoText(soError))") }
        }
        return fd
    } catch {
        closeDescriptor(fd)
        throw error
    }
}

/// Writes all of `bytes` to a non-blocking stream socket before `deadline`.
func sendAll(_ fd: Int32, _ bytes: [UInt8], deadline: Deadline, peer: SocketAddress) throws(TDNSError) {
    var offset = 0
    var fds = [pollfd(fd: fd, events: pollOut, revents: 0)]
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { buf in
            send(fd, buf.baseAddress.map { $0 + offset }, buf.count - offset, Int32(MSG_NOSIGNAL))
        }
        if n > 0 {
            offset += n
            continue
        }
        let e = errno
        guard n < 0, e == EAGAIN || e == EWOULDBLOCK || e == EINTR else {
            throw .network("sending to \(peer) failed: \(errnoText(e))")
        }
        if deadline.expired { throw .timeout("sending to \(peer) timed out") }
        _ = pollDescriptors(&fds, timeout: deadline.pollTimeout())
    }
}

/// Reads exactly `count` bytes from a non-blocking stream socket before `deadline`.
func receiveExactly(_ fd: Int32, _ count: Int, deadline: Deadline, peer: SocketAddress) throws(TDNSError) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count)
    var offset = 0
    var fds = [pollfd(fd: fd, events: pollIn, revents: 0)]
    while offset < count {
        let n = out.withUnsafeMutableBytes { buf in
            recv(fd, buf.baseAddress.map { $0 + offset }, buf.count - offset, 0)
        }
        if n > 0 {
            offset += n
            continue
        }
        if n == 0 { throw .network("\(peer) closed the connection") }
        let e = errno
        guard e == EAGAIN || e == EWOULDBLOCK || e == EINTR else {
            throw .network("receiving from \(peer) failed: \(errnoText(e))")
        }
        if deadline.expired { throw .timeout("no answer from \(peer) in time") }
        _ = pollDescriptors(&fds, timeout: deadline.pollTimeout())
    }
    return out
}

/// A close-on-exec, non-blocking pair of connected stream sockets used to wake a thread that
/// sleeps in poll(2) (Glibc's Swift module has neither pipe2 nor eventfd).
func makeWakePair() throws(TDNSError) -> (read: Int32, write: Int32) {
    var fds: [Int32] = [-1, -1]
    let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
    guard socketpair(AF_UNIX, type, 0, &fds) == 0 else {
        throw .network("cannot create a wake-up socket pair: \(errnoText())")
    }
    return (fds[0], fds[1])
}

/// Makes the read end of a wake pair readable (one byte; a full buffer is already readable).
func signalWake(_ fd: Int32) {
    var byte: UInt8 = 1
    _ = send(fd, &byte, 1, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
}

/// Empties the read end of a wake pair.
func drainWake(_ fd: Int32) {
    var buf = [UInt8](repeating: 0, count: 64)
    while true {
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        if n <= 0 { return }
    }
}

private typealias Accept4Function = @convention(c) (
    Int32, UnsafeMutablePointer<sockaddr>?, UnsafeMutablePointer<socklen_t>?, Int32
) -> Int32

/// glibc's accept4, looked up at run time because Swift's Glibc module does not declare it.
private let accept4Function: Accept4Function? = {
    guard let symbol = dlsym(nil, "accept4") else { return nil }
    return unsafeBitCast(symbol, to: Accept4Function.self)
}()

/// Accepts one connection as a close-on-exec, non-blocking descriptor. Returns the descriptor
/// and the peer, or nil with `errno` set.
func acceptConnection(_ listener: Int32) -> (fd: Int32, peer: SocketAddress?)? {
    var storage = sockaddr_storage()
    var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let fd = withUnsafeMutablePointer(to: &storage) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
            if let accept4Function {
                return accept4Function(listener, sa, &len, Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue))
            }
            // Fallback without accept4: a fork+exec between accept and fcntl could inherit it.
            let fd = accept(listener, sa, &len)
            if fd >= 0 {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            }
            return fd
        }
    }
    guard fd >= 0 else { return nil }
    return (fd, SocketAddress(storage: storage))
}
