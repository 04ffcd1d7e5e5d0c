#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import TDNSCore
@testable import TDNSTransport

// Helpers for the transport tests: raw messages, handlers, background threads and raw sockets.

let loopback = SocketAddress(bytes: [127, 0, 0, 1], port: 0)

/// A 12-byte header with `id` and RD, followed by `payload` (a tag the echo handler returns).
func query(id: UInt16, payload: [UInt8] = []) -> [UInt8] {
    [UInt8(id >> 8), UInt8(id & 0xFF), 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0] + payload
}

func messageID(_ m: [UInt8]) -> UInt16 { UInt16(m[0]) << 8 | UInt16(m[1]) }

/// The request with QR set: what every echo handler answers.
func echo(_ request: [UInt8]) -> [UInt8] {
    var answer = request
    answer[2] |= 0x80
    return answer
}

/// Runs `body` on a pthread; the returned closure joins it and hands back the result.
func inBackground<T: Sendable>(_ body: @escaping @Sendable () -> T) -> @Sendable () -> T? {
    let box = ResultBox<T>()
    guard let thread = spawnThread({
        let r = body()
        box.value.withLock { $0 = r }
    }) else { return { nil } }
    return {
        pthread_join(thread, nil)
        return box.value.withLock { $0 }
    }
}

final class ResultBox<T: Sendable>: Sendable {
    let value = Mutex<T?>(nil)
}

/// Runs a throwing body, capturing its TDNSError.
func capture<T: Sendable>(_ body: () throws(TDNSError) -> T) -> Result<T, TDNSError> {
    do throws(TDNSError) {
        return .success(try body())
    } catch {
        return .failure(error)
    }
}

/// Seconds `body` took.
func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = ContinuousClock.now
    try body()
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

/// Counts handler calls and can hold them until released.
final class Gate: Sendable {
    private let open = Atomic<Bool>(false)
    let entered = Atomic<Int>(0)

    func wait() {
        entered.add(1, ordering: .relaxed)
        while !open.load(ordering: .acquiring) { sleepMilliseconds(1) }
    }

    func release() { open.store(true, ordering: .releasing) }
}

// MARK: raw sockets

/// A raw TCP connection for framing tests.
final class RawTCP: Sendable {
    let fd: Int32
    let peer: SocketAddress

    init(_ server: SocketAddress) throws {
        fd = try connectTCP(to: server, from: nil, deadline: Deadline(after: 2))
        peer = server
    }

    deinit { closeDescriptor(fd) }

    func send(_ bytes: [UInt8]) throws {
        try sendAll(fd, bytes, deadline: Deadline(after: 2), peer: peer)
    }

    func sendFramed(_ message: [UInt8]) throws {
        try send(DNSClient.frame(message))
    }

    func receiveFramed(timeout: Double = 2) throws -> [UInt8] {
        let deadline = Deadline(after: timeout)
        let prefix = try receiveExactly(fd, 2, deadline: deadline, peer: peer)
        return try receiveExactly(fd, Int(prefix[0]) << 8 | Int(prefix[1]), deadline: deadline, peer: peer)
    }

    /// True when the server closed the connection (EOF or reset) within `timeout`.
    func closedByPeer(within timeout: Double) -> Bool {
        let deadline = Deadline(after: timeout)
        var buf = [UInt8](repeating: 0, count: 4096)
        var fds = [pollfd(fd: fd, events: pollIn, revents: 0)]
        while !deadline.expired {
            fds[0].revents = 0
            guard pollDescriptors(&fds, timeout: deadline.pollTimeout()) > 0 else { continue }
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n == 0 { return true }
            if n < 0, errno != EAGAIN, errno != EINTR { return true }
        }
        return false
    }

    func shutdownWrite() { _ = shutdown(fd, Int32(SHUT_WR)) }
}

/// A raw UDP socket bound on 127.0.0.1.
final class RawUDP: Sendable {
    let fd: Int32
    let address: SocketAddress

    init(port: UInt16 = 0) throws {
        fd = try makeSocket(.ipv4, .datagram)
        try bindSocket(fd, to: loopback.with(port: port))
        guard let local = localAddress(of: fd) else { throw TDNSError(.network, "getsockname") }
        address = local
    }

    deinit { closeDescriptor(fd) }

    func receive(timeout: Double) -> ([UInt8], SocketAddress)? {
        let deadline = Deadline(after: timeout)
        var buf = [UInt8](repeating: 0, count: 65536)
        var fds = [pollfd(fd: fd, events: pollIn, revents: 0)]
        while !deadline.expired {
            fds[0].revents = 0
            guard pollDescriptors(&fds, timeout: deadline.pollTimeout()) > 0 else { continue }
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let n = buf.withUnsafeMutableBytes { b in
                withUnsafeMutablePointer(to: &storage) { p in
                    p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        recvfrom(fd, b.baseAddress, b.count, Int32(MSG_DONTWAIT), $0, &length)
                    }
                }
            }
            if n >= 0, let peer = SocketAddress(storage: storage) { return (Array(buf[0..<n]), peer) }
        }
        return nil
    }

    func send(_ bytes: [UInt8], to peer: SocketAddress) {
        _ = bytes.withUnsafeBytes { b in
            peer.withSockAddr { sa, len in sendto(fd, b.baseAddress, b.count, Int32(MSG_NOSIGNAL), sa, len) }
        }
    }
}

/// Number of threads of this process.
func threadCount() -> Int {
    guard let dir = opendir("/proc/self/task") else { return -1 }
    defer { closedir(dir) }
    var count = 0
    while readdir(dir) != nil { count += 1 }
    return count - 2
}

/// The first payload byte after the header (0 without a payload): tells handlers what to do.
func tag(_ request: [UInt8]) -> UInt8 { request.count > 12 ? request[12] : 0 }
