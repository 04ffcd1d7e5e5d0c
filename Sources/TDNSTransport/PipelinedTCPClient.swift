#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import TDNSCore

/// Several queries in flight over one TCP connection (RFC 7766 §6.2.1.1 pipelining); answers
/// are matched by message ID and may arrive in any order.
///
/// The connection is opened by `init` and kept across ``exchange(_:window:)`` calls (a server
/// closes idle connections, DNSServer after 10 s: then the next exchange fails with `.network`
/// and the caller connects again). Any error during an exchange closes the connection (its
/// state is unknown afterwards: late answers could be mistaken for the next exchange's), and
/// later calls throw `.network`. Exchanges from several threads are serialized; ``close()``
/// from another thread, or the stop token given to `init`, interrupts an exchange in progress,
/// which then fails with `.network` (stop: within ``StopToken/pollSlice`` milliseconds).
///
/// ## Deadlines
///
/// Every answer message must be complete within ``timeout`` from the moment it is awaited: the
/// first from the start of the exchange, each further one from the completion of the one
/// before. Only a complete message restarts the clock — bytes trickling in (or queries the
/// server is slow to read) never do, so a server cannot hold the caller longer than
/// ``timeout`` per answer by sending one byte at a time. An exchange of n queries therefore
/// takes at most n × ``timeout``, and at most `totalTimeout` when that is given.
public final class PipelinedTCPClient: Sendable {
    public let server: SocketAddress
    /// Seconds allowed to connect, and during an exchange for each answer message to be
    /// complete from when it is awaited (see the type's documentation).
    public let timeout: Double

    // Descriptor discipline: `fd` is closed only while holding both locks; `exchangeLock` is
    // held for a whole exchange (which uses `fd` without `descriptorOpen`); shutdown(2) from
    // close() happens under `descriptorOpen` alone and only while the descriptor is open. So no
    // call ever reaches a closed (possibly reused) descriptor.
    private let fd: Int32
    private let stop: StopToken?
    private let descriptorOpen = Mutex(true)
    private let exchangeLock = Mutex(())

    /// Connects to `server` (from `source` when given). `stop` ends the connect and every
    /// exchange on this connection early.
    ///
    /// - Throws: `.malformed` for a bad timeout, `.config` for a source of the other family,
    ///   `.network` when the connection is refused or fails, `.timeout`.
    public init(
        server: SocketAddress, timeout: Double, source: SocketAddress? = nil, stop: StopToken? = nil
    ) throws(TDNSError) {
        let timeout = try validatedTimeout(timeout)
        self.fd = try connectTCP(to: server, from: source, deadline: Deadline(after: timeout, stop: stop))
        self.server = server
        self.timeout = timeout
        self.stop = stop
    }

    deinit {
        descriptorOpen.withLock { open in
            if open { closeDescriptor(fd) }
            open = false
        }
    }

    /// Whether the connection is still open (not closed, no exchange failed on it).
    public var isOpen: Bool { descriptorOpen.withLock { $0 } }

    /// Sends every query, keeping at most `window` unanswered at a time, and returns the
    /// answers in the order of `queries`.
    ///
    /// - Parameter totalTimeout: seconds for the whole exchange, on top of the per-answer
    ///   ``timeout``; nil: n × ``timeout`` at most.
    /// - Throws: `.malformed` for a query shorter than a header, IDs repeated among `queries`,
    ///   `window` < 1 or a bad `totalTimeout`; `.tooBig` for a query over 65535 bytes (argument
    ///   errors leave the connection open); `.dns` for an answer that is too short, lacks QR, or
    ///   has an unknown or already answered ID; `.timeout` when an answer is not complete
    ///   within ``timeout`` of being awaited (e.g. it never comes, or trickles in) or the
    ///   exchange outlasts `totalTimeout`; `.network` when the connection is closed, reset, was
    ///   closed before or is closed by ``close()`` meanwhile.
    public func exchange(_ queries: [[UInt8]], window: Int = 32, totalTimeout: Double? = nil) throws(TDNSError) -> [[UInt8]] {
        guard window >= 1 else { throw .malformed("pipelining window must be at least 1") }
        let total = try totalTimeout.map { (t: Double) throws(TDNSError) in try validatedTimeout(t, "totalTimeout") }
        var index: [UInt16: Int] = [:]
        index.reserveCapacity(queries.count)
        for (i, query) in queries.enumerated() {
            try DNSClient.checkQuery(query)
            guard index.updateValue(i, forKey: DNSClient.messageID(query)) == nil else {
                throw .malformed("query ID \(DNSClient.messageID(query)) appears twice in one pipelined exchange")
            }
        }
        return try exchangeLock.withLock { (_: inout Void) throws(TDNSError) -> [[UInt8]] in
            guard isOpen else { throw .network("the pipelined connection to \(server) is closed") }
            if queries.isEmpty { return [] }
            do throws(TDNSError) {
                return try run(queries, index, window: min(window, 65536), totalTimeout: total)
            } catch {
                closeLocked()
                throw error
            }
        }
    }

    /// Closes the connection; idempotent. An exchange running on another thread fails at once
    /// with `.network`; close() returns when it has.
    public func close() {
        descriptorOpen.withLock { open in
            if open { _ = shutdown(fd, Int32(SHUT_RDWR)) }
        }
        exchangeLock.withLock { _ in closeLocked() }
    }

    /// Closes the descriptor; the caller holds `exchangeLock`.
    private func closeLocked() {
        descriptorOpen.withLock { open in
            if open { closeDescriptor(fd) }
            open = false
        }
    }

    private func run(
        _ queries: [[UInt8]], _ index: [UInt16: Int], window: Int, totalTimeout: Double?
    ) throws(TDNSError) -> [[UInt8]] {
        var answers = [[UInt8]?](repeating: nil, count: queries.count)
        var nextToQueue = 0
        var unanswered = 0
        var received = 0
        var output: [UInt8] = []
        var sent = 0
        var input: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        let start = MonotonicClock.now()
        let end = totalTimeout.map { start + $0 } ?? .infinity
        // When the answer awaited now must be complete: reset only by a complete answer.
        var answerDue = start + timeout
        var fds = [pollfd(fd: fd, events: 0, revents: 0)]

        while received < queries.count {
            // Queue queries up to the window; the output buffer stays small.
            while nextToQueue < queries.count, unanswered < window, output.count - sent < 65536 {
                output.append(contentsOf: DNSClient.frame(queries[nextToQueue]))
                nextToQueue += 1
                unanswered += 1
            }
            let pendingOutput = sent < output.count
            fds[0].events = pollIn | (pendingOutput ? pollOut : 0)
            fds[0].revents = 0
            if stop?.isStopped == true { throw .network("the exchange with \(server) was stopped") }
            let now = MonotonicClock.now()
            if now >= end {
                throw .timeout("\(queries.count - received) of \(queries.count) answers from \(server) not complete within \(totalTimeout ?? 0) s")
            }
            let left = min(answerDue, end) - now
            if left <= 0 {
                throw .timeout("\(queries.count - received) of \(queries.count) answers from \(server) did not arrive in time (each must be complete within \(timeout) s)")
            }
            let ms = Int32(max(1, min(stop == nil ? 1000 : Double(StopToken.pollSlice), (left * 1000).rounded(.up))))
            guard pollDescriptors(&fds, timeout: ms) > 0 else { continue }
            let revents = fds[0].revents

            if pendingOutput, revents & (pollOut | Int16(POLLERR)) != 0 {
                let start = sent
                let n = output.withUnsafeBytes { buf in
                    send(fd, buf.baseAddress.map { $0 + start }, buf.count - start, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                }
                if n > 0 {
                    sent += n
                    if sent == output.count {
                        output.removeAll(keepingCapacity: true)
                        sent = 0
                    }
                } else {
                    let e = errno
                    if n == 0 || (e != EAGAIN && e != EWOULDBLOCK && e != EINTR) {
                        throw .network("sending to \(server) failed: \(errnoText(e))")
                    }
                }
            }

            if revents & (pollIn | Int16(POLLHUP | POLLERR)) != 0 {
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if n == 0 {
                    throw .network("\(server) closed the connection with \(queries.count - received) answers outstanding")
                }
                if n < 0 {
                    let e = errno
                    if e != EAGAIN, e != EWOULDBLOCK, e != EINTR {
                        throw .network("receiving from \(server) failed: \(errnoText(e))")
                    }
                    continue
                }
                input.append(contentsOf: chunk[0..<n])

                var consumed = 0
                while input.count - consumed >= 2 {
                    let length = Int(input[consumed]) << 8 | Int(input[consumed + 1])
                    guard input.count - consumed >= 2 + length else { break }
                    let message = Array(input[(consumed + 2)..<(consumed + 2 + length)])
                    consumed += 2 + length
                    guard message.count >= 12 else {
                        throw .dns("\(server) sent a TCP message of \(message.count) bytes, shorter than a DNS header")
                    }
                    let id = DNSClient.messageID(message)
                    guard let i = index[id], i < nextToQueue else {
                        throw .dns("\(server) answered with ID \(id), which no query in flight has")
                    }
                    guard answers[i] == nil else { throw .dns("\(server) answered query ID \(id) twice") }
                    guard message[2] & 0x80 != 0 else { throw .dns("\(server) sent a message without QR for ID \(id)") }
                    answers[i] = message
                    unanswered -= 1
                    received += 1
                    answerDue = MonotonicClock.now() + timeout
                }
                if consumed > 0 { input.removeFirst(consumed) }
            }
        }
        guard input.isEmpty else { throw .dns("\(server) sent more than one answer per query") }
        return answers.map { $0 ?? [] }
    }
}
