#if canImport(Glibc)
import Glibc
#endif
import TDNSCore

/// One-shot DNS exchanges over UDP or TCP, blocking the calling thread for at most the timeout.
///
/// Works on raw messages: a query must be a DNS message of 12–65535 bytes; only its ID (the
/// first two bytes) is read. An answer is accepted when it is at least 12 bytes long, has QR set
/// and carries the query's ID; checking the question and the rest is the caller's business.
public enum DNSClient {
    /// Sends `query` to `server` and returns the answer.
    ///
    /// - UDP: a connected socket, so the kernel drops datagrams from other addresses; datagrams
    ///   with another ID, without QR or shorter than a header are ignored and the wait goes on.
    ///   An ICMP port-unreachable ends the wait with `.network`.
    /// - TCP: connect, one length-prefixed query (RFC 1035 §4.2.2), then length-prefixed
    ///   messages until one has the query's ID (others are skipped).
    ///
    /// The deadline is fixed when the exchange starts: the answer must be complete within
    /// `timeout` of the call, whatever arrives meanwhile — bytes trickling in, or messages with
    /// other IDs, never extend it (a server sending one byte every few seconds costs the caller
    /// `timeout`, not hours).
    ///
    /// - Parameters:
    ///   - timeout: seconds for the whole exchange (connect, send and the complete answer).
    ///   - source: the local address to send from (the KRS confirms from its registered IP,
    ///     PROTOCOL §10.6); port 0 lets the kernel pick the port.
    /// - Throws: `.malformed` for a bad query or timeout, `.tooBig` for a query over 65535
    ///   bytes, `.config` when `source` is of the other address family, `.network` for refused,
    ///   reset or closed connections and socket errors, `.timeout`, and `.dns` for a TCP answer
    ///   that is not a DNS response.
    public static func exchange(
        _ query: [UInt8], server: SocketAddress, over transport: DNSTransportKind, timeout: Double,
        source: SocketAddress? = nil, stop: StopToken? = nil
    ) throws(TDNSError) -> [UInt8] {
        try checkQuery(query)
        let deadline = Deadline(after: try validatedTimeout(timeout), stop: stop)
        switch transport {
        case .udp: return try exchangeUDP(query, server: server, deadline: deadline, source: source)
        case .tcp: return try exchangeTCP(query, server: server, deadline: deadline, source: source)
        }
    }

    /// UDP first; when the answer has TC set, the same query again over TCP (RFC 1035 §4.2.1,
    /// PROTOCOL §5.1 step 5 and §13). PROTOCOL's timers are 5 s for UDP and 10 s for TCP.
    ///
    /// - Parameters:
    ///   - timeout: seconds for the UDP exchange.
    ///   - tcpTimeout: seconds for the TCP exchange; `timeout` when nil.
    public static func exchangeWithFallback(
        _ query: [UInt8], server: SocketAddress, timeout: Double, tcpTimeout: Double? = nil,
        source: SocketAddress? = nil, stop: StopToken? = nil
    ) throws(TDNSError) -> [UInt8] {
        let answer = try exchange(query, server: server, over: .udp, timeout: timeout, source: source, stop: stop)
        guard isTruncated(answer) else { return answer }
        return try exchange(query, server: server, over: .tcp, timeout: tcpTimeout ?? timeout, source: source, stop: stop)
    }

    /// Whether a message has the TC bit set (RFC 1035 §4.1.1).
    public static func isTruncated(_ message: [UInt8]) -> Bool {
        message.count >= 12 && message[2] & 0x02 != 0
    }

    // MARK: internals

    static func checkQuery(_ query: [UInt8]) throws(TDNSError) {
        guard query.count <= 65535 else { throw .tooBig("DNS query of \(query.count) bytes exceeds 65535") }
        guard query.count >= 12 else { throw .malformed("DNS query of \(query.count) bytes is shorter than the 12-byte header") }
    }

    static func messageID(_ message: [UInt8]) -> UInt16 {
        UInt16(message[0]) << 8 | UInt16(message[1])
    }

    /// A length-prefixed message for TCP; the caller has checked `message.count <= 65535`.
    static func frame(_ message: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(message.count + 2)
        out.append(UInt8(truncatingIfNeeded: message.count >> 8))
        out.append(UInt8(truncatingIfNeeded: message.count))
        out.append(contentsOf: message)
        return out
    }

    private static func exchangeUDP(
        _ query: [UInt8], server: SocketAddress, deadline: Deadline, source: SocketAddress?
    ) throws(TDNSError) -> [UInt8] {
        if let source, source.family != server.family {
            throw .config("source \(source) and server \(server) are of different address families")
        }
        let fd = try makeSocket(server.family, .datagram)
        defer { closeDescriptor(fd) }
        if let source { try bindSocket(fd, to: source) }
        guard server.withSockAddr({ sa, len in connect(fd, sa, len) }) == 0 else {
            throw .network("cannot address \(server) over UDP: \(errnoText())")
        }

        var fds = [pollfd(fd: fd, events: pollOut, revents: 0)]
        while true {
            let n = query.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n == query.count { break }
            let e = errno
            guard n < 0, e == EAGAIN || e == EWOULDBLOCK || e == EINTR else {
                throw .network("sending to \(server) over UDP failed: \(errnoText(e))")
            }
            if deadline.expired { throw .timeout("sending to \(server) over UDP timed out") }
            _ = pollDescriptors(&fds, timeout: deadline.pollTimeout())
        }

        let id = messageID(query)
        var buffer = [UInt8](repeating: 0, count: 65536)
        fds[0].events = pollIn
        while true {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let n = buffer.withUnsafeMutableBytes { buf in
                withUnsafeMutablePointer(to: &storage) { p in
                    p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                        recvfrom(fd, buf.baseAddress, buf.count, Int32(MSG_DONTWAIT), sa, &length)
                    }
                }
            }
            if n >= 0 {
                // The connected socket already filters by address; checked again all the same.
                if n >= 12, SocketAddress(storage: storage) == server, messageID(buffer) == id, buffer[2] & 0x80 != 0 {
                    return Array(buffer[0..<n])
                }
                continue
            }
            let e = errno
            if e == ECONNREFUSED { throw .network("\(server) refused the query (ICMP port unreachable)") }
            guard e == EAGAIN || e == EWOULDBLOCK || e == EINTR else {
                throw .network("receiving from \(server) over UDP failed: \(errnoText(e))")
            }
            if deadline.expired { throw .timeout("no answer from \(server) over UDP in time") }
            fds[0].revents = 0
            _ = pollDescriptors(&fds, timeout: deadline.pollTimeout())
        }
    }

    private static func exchangeTCP(
        _ query: [UInt8], server: SocketAddress, deadline: Deadline, source: SocketAddress?
    ) throws(TDNSError) -> [UInt8] {
        let fd = try connectTCP(to: server, from: source, deadline: deadline)
        defer { closeDescriptor(fd) }
        try sendAll(fd, frame(query), deadline: deadline, peer: server)
        let id = messageID(query)
        while true {
            let prefix = try receiveExactly(fd, 2, deadline: deadline, peer: server)
            let length = Int(prefix[0]) << 8 | Int(prefix[1])
            let message = try receiveExactly(fd, length, deadline: deadline, peer: server)
            guard message.count >= 12 else {
                throw .dns("\(server) sent a TCP message of \(message.count) bytes, shorter than a DNS header")
            }
            guard messageID(message) == id else { continue }
            guard message[2] & 0x80 != 0 else { throw .dns("\(server) sent a message without QR instead of an answer") }
            return message
        }
    }
}
