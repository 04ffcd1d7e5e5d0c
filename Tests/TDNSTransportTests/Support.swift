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
    guard let thread = try? JoinableThread({
        let r = body()
        box.value.withLock { $0 = r }
    }) else { return { nil } }
    return {
        thread.join()
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

    init(_ server: SocketAddress, source: SocketAddress? = nil) throws {
        fd = try connectTCP(to: server, from: source, deadline: Deadline(after: 2))
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

    /// Sends one byte now, without waiting; false when the connection is gone.
    func sendByte(_ byte: UInt8) -> Bool {
        var b = byte
        return Glibc.send(fd, &b, 1, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) == 1
    }

    /// Whether the server has closed this connection, checked now without reading any data:
    /// an end of stream (the server's FIN, POLLRDHUP) or a reset (POLLERR/POLLHUP).
    var isClosedByPeer: Bool {
        var fds = [pollfd(fd: fd, events: pollReadHangUp, revents: 0)]
        guard pollDescriptors(&fds, timeout: 0) > 0 else { return false }
        return fds[0].revents & (pollReadHangUp | Int16(POLLHUP | POLLERR)) != 0
    }

    /// Sets a small receive buffer (before data flows), so that the server's writes stall soon.
    func shrinkReceiveBuffer() {
        setIntOption(fd, SOL_SOCKET, SO_RCVBUF, 4096)
    }
}

/// A TCP server for client tests that answers each query (echo, QR set) by sending the framed
/// answer one byte every `byteInterval` seconds, or whole answers `answerInterval` apart.
final class TrickleServer: Sendable {
    let address: SocketAddress
    private let listener: Int32
    private let stopFlag = StopToken()
    private let join: @Sendable () -> Void?

    init(byteInterval: Double? = nil, answerInterval: Double = 0) throws {
        let fd = try makeSocket(.ipv4, .stream)
        try bindSocket(fd, to: loopback)
        guard listen(fd, 16) == 0, let bound = localAddress(of: fd) else { throw TDNSError(.network, "listen") }
        listener = fd
        address = bound
        let stop = stopFlag
        join = inBackground {
            var connections: [Int32] = []
            defer { connections.forEach(closeDescriptor) }
            while !stop.isStopped {
                var fds = [pollfd(fd: fd, events: pollIn, revents: 0)] + connections.map { pollfd(fd: $0, events: pollIn, revents: 0) }
                guard pollDescriptors(&fds, timeout: 20) > 0 else { continue }
                for (i, c) in connections.enumerated() where fds[i + 1].revents != 0 {
                    // Read every complete query waiting (small; one recv is enough on loopback).
                    var buf = [UInt8](repeating: 0, count: 65536)
                    let n = buf.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                    guard n > 0 else { continue }
                    var offset = 0
                    while n - offset >= 2 {
                        let length = Int(buf[offset]) << 8 | Int(buf[offset + 1])
                        guard n - offset >= 2 + length else { break }
                        let answer = DNSClient.frame(echo(Array(buf[(offset + 2)..<(offset + 2 + length)])))
                        offset += 2 + length
                        if answerInterval > 0 { sleepMilliseconds(Int32(answerInterval * 1000)) }
                        if let byteInterval {
                            for byte in answer {
                                if stop.isStopped { return }
                                var b = byte
                                guard Glibc.send(c, &b, 1, Int32(MSG_NOSIGNAL)) == 1 else { break }
                                sleepMilliseconds(Int32(byteInterval * 1000))
                            }
                        } else {
                            _ = try? sendAll(c, answer, deadline: Deadline(after: 2), peer: bound)
                        }
                    }
                }
                if fds[0].revents != 0, let (c, _) = acceptConnection(fd) { connections.append(c) }
            }
        }
    }

    func stop() {
        stopFlag.stop()
        _ = join()
        closeDescriptor(listener)
    }
}

/// Lines of /proc/self/maps: the process's memory mappings (thread stacks show up here).
func mappingCount() -> Int {
    guard let f = fopen("/proc/self/maps", "r") else { return -1 }
    defer { fclose(f) }
    var count = 0
    while true {
        let c = getc(f)
        if c == EOF { break }
        if c == 10 { count += 1 }
    }
    return count
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

/// POLLRDHUP (Linux, <poll.h> with _GNU_SOURCE, which Swift's Glibc module does not define):
/// the peer closed its end.
let pollReadHangUp = Int16(0x2000)
