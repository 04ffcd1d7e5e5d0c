#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import TDNSCore

// The TCP half of DNSServer (DNSServer.swift holds the public server and ServerCore): the
// event loop that owns every connection, its sessions, and the sockets it shares with the
// workers (wake-up signal, UDP endpoints, TCP connections).

// MARK: - the TCP event loop

/// The TCP side of a server: one thread, one poll(2) over the wake-up sockets, the listener and
/// every connection (see ``DNSServer`` for the limits it enforces). Lives on the loop thread
/// only; what workers touch is in ``TCPConnection``.
struct TCPEventLoop {
    let core: ServerCore
    let options: DNSServer.Options
    private var sessions: [TCPSession] = []
    private var live = 0
    private var perSource: [[UInt8]: Int] = [:]
    private var fds: [pollfd] = []
    private var chunk = [UInt8](repeating: 0, count: 65536)
    /// Out of descriptors or memory: the listener is not polled until then.
    private var acceptPausedUntil = 0.0

    init(core: ServerCore) {
        self.core = core
        self.options = core.options
    }

    mutating func run() {
        defer {
            for session in sessions where !session.closed { drop(session) }
            sessions = []
        }
        let listenerSlot = 2
        while !core.isStopping {
            var now = MonotonicClock.now()
            var wakeAt = now + 1
            let listening = now >= acceptPausedUntil
            if !listening { wakeAt = min(wakeAt, acceptPausedUntil) }
            fds.removeAll(keepingCapacity: true)
            fds.append(pollfd(fd: core.wake.read, events: pollIn, revents: 0))
            fds.append(pollfd(fd: core.loopWake.read, events: pollIn, revents: 0))
            // poll(2) ignores negative descriptors.
            fds.append(pollfd(fd: listening ? core.tcpListener : -1, events: pollIn, revents: 0))

            // Every connection: queue what it has, enforce its deadlines, decide what to wait for.
            var kept = 0
            for i in sessions.indices {
                let session = sessions[i]
                guard !session.closed else { continue }
                switch service(session, now: now) {
                case .wait(let events, let deadline):
                    sessions[kept] = session
                    kept += 1
                    fds.append(pollfd(fd: session.connection.fd, events: events, revents: 0))
                    wakeAt = min(wakeAt, deadline)
                case .close:
                    drop(session)
                case .abort:
                    drop(session, abort: true)
                }
            }
            sessions.removeLast(sessions.count - kept)

            let timeout = Int32(max(0, min(1000, ((wakeAt - now) * 1000).rounded(.up))))
            guard pollDescriptors(&fds, timeout: timeout) > 0 else { continue }
            if fds[0].revents != 0 { return }
            if fds[1].revents != 0 { core.loopWake.drain() }
            now = MonotonicClock.now()
            for i in 0..<kept {
                let revents = fds[listenerSlot + 1 + i].revents
                if revents != 0 { handleIO(sessions[i], revents, now: now) }
            }
            if listening, fds[listenerSlot].revents != 0 { acceptBatch(now: now) }
        }
    }

    enum Verdict {
        /// Keep it: poll for these events; the next deadline is then.
        case wait(Int16, Double)
        case close
        /// Close with a reset: answers the peer did not read are dropped at once, not kept in
        /// the kernel for a peer that does not read them.
        case abort
    }

    /// Queues the complete requests a connection holds and checks its state and deadlines.
    private func service(_ s: TCPSession, now: Double) -> Verdict {
        let c = s.connection
        var consumed = 0
        var queuedAny = false
        while s.input.count - consumed >= 2 {
            let length = Int(s.input[consumed]) << 8 | Int(s.input[consumed + 1])
            // Shorter than a header: a broken or hostile client (RFC 7766 §8 allows closing).
            guard length >= 12 else { return .close }
            guard s.input.count - consumed >= 2 + length else { break }
            let start = consumed + 2
            if s.input[start + 2] & 0x80 == 0 {
                guard c.admitRequest(depth: options.pipelineDepth) else { break }
                let request = Array(s.input[start..<(start + length)])
                guard core.queue.push(ServerJob(request: request, peer: c.peer, reply: .tcp(c))) else { return .close }
            }  // else an answer sent to a server: ignored, but it is a complete message
            consumed = start + length
            queuedAny = true
            s.requests += 1
            s.lastRequest = now
        }
        if consumed > 0 {
            s.input.removeFirst(consumed)
            // An idle connection does not keep the buffer of a large request.
            if s.input.isEmpty, s.input.capacity > 4096 { s.input = [] }
        }
        let st = c.status()
        if st.failed { return .close }
        if !s.readOpen, st.inFlight == 0, st.pendingBytes == 0 { return .close }  // all answered after EOF

        let wantRead = s.readOpen && st.inFlight < options.pipelineDepth && st.pendingBytes < ServerCore.outboxLimit
            && s.input.count < 2 + 65535
        if wantRead, !s.wantRead { s.resumedAt = now }
        s.wantRead = wantRead

        // The clock of an incomplete request. It runs only while the server reads: a pause for
        // the pipeline or for the peer to read its answers is the server's doing (the latter
        // has its own deadline), so it starts again when reading resumes.
        if s.input.isEmpty || s.hasCompleteMessage {
            s.messageStart = nil  // nothing partial (a complete one waits for the pipeline)
        } else if !wantRead {
            s.messageStart = now
        } else if queuedAny || s.messageStart == nil {
            // A new partial message: its first byte came with the latest read (earlier reads
            // ended on a boundary or brought only messages queued now), or was already
            // buffered when reading resumed.
            s.messageStart = max(s.lastRead, s.resumedAt)
        }

        var deadline = Double.infinity
        // Idle: no traffic, and no handler working for it (or answers it does not read).
        if st.inFlight == 0 || st.pendingBytes > 0 {
            let idleEnd = max(s.lastRead, st.lastWrite) + options.tcpIdleTimeout
            if now >= idleEnd { return st.pendingBytes > 0 ? .abort : .close }
            deadline = idleEnd
        }
        if let start = s.messageStart {
            let end = start + options.tcpMessageTimeout
            if now >= end { return st.pendingBytes > 0 ? .abort : .close }
            deadline = min(deadline, end)
        }
        if st.pendingBytes > 0 {
            let end = st.headSince + options.tcpMessageTimeout
            if now >= end { return .abort }
            deadline = min(deadline, end)
        }
        s.evictable = st.inFlight == 0 && st.pendingBytes == 0
        s.lastAnswer = st.lastAnswer
        return .wait((wantRead ? pollIn : 0) | (st.pendingBytes > 0 ? pollOut : 0), deadline)
    }

    private mutating func handleIO(_ s: TCPSession, _ revents: Int16, now: Double) {
        if revents & Int16(POLLERR | POLLNVAL) != 0 { return drop(s) }
        if revents & pollOut != 0, s.connection.flush() == .failed { return drop(s) }
        if s.wantRead, revents & (pollIn | Int16(POLLHUP)) != 0 {
            let n = chunk.withUnsafeMutableBytes { recv(s.connection.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 {
                s.input.append(contentsOf: chunk[0..<n])
                s.lastRead = now
                if s.messageStart == nil { s.messageStart = now }
            } else if n == 0 {
                s.readOpen = false  // the client may half-close and still wait for answers
            } else {
                let e = errno
                if e != EAGAIN, e != EWOULDBLOCK, e != EINTR { drop(s) }
            }
        } else if revents & Int16(POLLHUP) != 0 {
            drop(s)
        }
    }

    /// Accepts a bounded batch per wake-up, so that stop() and the open connections are served
    /// even under a connection flood.
    private mutating func acceptBatch(now: Double) {
        for _ in 0..<64 {
            guard let (fd, peer) = acceptConnection(core.tcpListener) else {
                let e = errno
                if e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM {
                    // The connection stays in the backlog and poll would report it again at
                    // once: leave the listener alone for a while instead of spinning.
                    acceptPausedUntil = now + 0.1
                }
                return
            }
            admit(fd, peer, now: now)
        }
    }

    private mutating func admit(_ fd: Int32, _ peer: SocketAddress?, now: Double) {
        guard let peer, perSource[peer.addressBytes, default: 0] < options.maxConnectionsPerSource else {
            closeDescriptor(fd)
            return
        }
        if live >= options.maxConnections {
            guard let victim = evictionCandidate(now: now) else {
                closeDescriptor(fd)
                return
            }
            drop(victim)
        }
        let session = TCPSession(connection: TCPConnection(fd: fd, peer: peer, wake: core.loopWake), now: now)
        sessions.append(session)
        live += 1
        perSource[peer.addressBytes, default: 0] += 1
    }

    /// The connection a new one may replace when the server is full, among those with nothing
    /// in a handler and nothing to write: first what a slow or silent peer looks like — no
    /// complete request yet, or a request incomplete for ``ServerCore/evictionGrace`` seconds —
    /// the one waiting longest; else the one idle longest after being served, once idle for
    /// ``ServerCore/evictionGrace`` seconds. A client between the queries of a burst, or one
    /// whose query is in a handler, is never chosen.
    private func evictionCandidate(now: Double) -> TCPSession? {
        var best: TCPSession? = nil
        var bestRank = 2
        var bestSince = Double.infinity
        for s in sessions where !s.closed && s.evictable {
            let rank: Int
            let since: Double
            if s.requests == 0 {
                (rank, since) = (0, s.lastRequest)  // the accept
            } else if let start = s.messageStart, now - start >= ServerCore.evictionGrace {
                (rank, since) = (0, start)
            } else {
                since = max(s.lastRequest, s.lastAnswer)
                guard now - since >= ServerCore.evictionGrace else { continue }
                rank = 1
            }
            if rank < bestRank || (rank == bestRank && since < bestSince) {
                best = s
                bestRank = rank
                bestSince = since
            }
        }
        return best
    }

    private mutating func drop(_ s: TCPSession, abort: Bool = false) {
        guard !s.closed else { return }
        s.closed = true
        s.input = []
        s.connection.close(abort: abort)
        live -= 1
        let key = s.connection.peer.addressBytes
        if let n = perSource[key], n > 1 { perSource[key] = n - 1 } else { perSource[key] = nil }
    }
}

/// What the TCP loop knows about one connection; touched by the loop thread only.
final class TCPSession {
    let connection: TCPConnection
    /// Received bytes not yet queued as requests.
    var input: [UInt8] = []
    var readOpen = true
    /// Whether the loop asked poll(2) for input in this round.
    var wantRead = true
    /// When the last bytes arrived (monotonic seconds; the accept counts).
    var lastRead: Double
    /// When the first byte of the incomplete request in `input` arrived (or reading resumed
    /// after a pause, if later); nil when none.
    var messageStart: Double?
    /// When reading last resumed after a pause (the accept at first).
    var resumedAt: Double
    /// Complete messages received, and when the last one completed (the accept before one did).
    var requests = 0
    var lastRequest: Double
    /// From the latest service pass: nothing in a handler, nothing to write.
    var evictable = false
    var lastAnswer: Double
    var closed = false

    init(connection: TCPConnection, now: Double) {
        self.connection = connection
        lastRead = now
        lastRequest = now
        lastAnswer = now
        resumedAt = now
    }

    /// Whether `input` starts with a complete length-prefixed message.
    var hasCompleteMessage: Bool {
        input.count >= 2 && input.count >= 2 + (Int(input[0]) << 8 | Int(input[1]))
    }
}

// MARK: - sockets shared with the workers

/// A wake-up socket pair that many threads may ring and one thread drains; one byte at most is
/// in flight, however many rings.
final class WakeSignal: Sendable {
    let read: Int32
    let write: Int32
    private let pending = Atomic<Bool>(false)

    init() throws(TDNSError) {
        (read, write) = try makeWakePair()
    }

    deinit {
        closeDescriptor(read)
        closeDescriptor(write)
    }

    func ring() {
        if !pending.exchange(true, ordering: .acquiringAndReleasing) { signalWake(write) }
    }

    /// Called by the waiting thread when `read` is readable, before it looks at what changed:
    /// a ring after this sends a new byte.
    func drain() {
        drainWake(read)
        pending.store(false, ordering: .releasing)
    }
}

/// The UDP socket. The UDP loop reads it without the lock (and alone closes it once started);
/// workers send under the lock, so a send never reaches a closed — possibly reused — descriptor.
final class UDPEndpoint: Sendable {
    let fd: Int32
    private let open = Mutex(true)

    init(fd: Int32) {
        self.fd = fd
    }

    deinit {
        close()
    }

    func send(_ bytes: [UInt8], to peer: SocketAddress) {
        open.withLock { isOpen in
            guard isOpen else { return }
            _ = bytes.withUnsafeBytes { buf in
                peer.withSockAddr { sa, len in
                    sendto(fd, buf.baseAddress, buf.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT), sa, len)
                }
            }
        }
    }

    func close() {
        open.withLock { isOpen in
            if isOpen { closeDescriptor(fd) }
            isOpen = false
        }
    }
}

/// One accepted TCP connection, as far as workers see it. The TCP loop reads and polls it;
/// workers append answers to the outbox (and send what the socket takes at once) under the
/// lock, then ring the loop. The descriptor is closed under the same lock, so no worker ever
/// touches a closed descriptor.
final class TCPConnection: Sendable {
    let fd: Int32
    let peer: SocketAddress
    private let wake: WakeSignal

    private struct State {
        var outbox: [UInt8] = []
        var sent = 0
        /// Offsets in `outbox` where each queued answer ends, from `frameHead` on.
        var frameEnds: [Int] = []
        var frameHead = 0
        /// When the answer now being written became the next to write.
        var headSince = 0.0
        var inFlight = 0
        var failed = false
        var open = true
        /// When a byte was last written or an answer delivered.
        var lastWrite: Double
        /// When an answer was last fully written (or a handler returned no answer).
        var lastAnswer: Double
    }

    struct Status {
        var inFlight: Int
        var pendingBytes: Int
        var failed: Bool
        var headSince: Double
        var lastWrite: Double
        var lastAnswer: Double
    }

    private let state: Mutex<State>

    enum FlushResult { case none, progress, failed }

    init(fd: Int32, peer: SocketAddress, wake: WakeSignal) {
        self.fd = fd
        self.peer = peer
        self.wake = wake
        let now = MonotonicClock.now()
        state = Mutex(State(lastWrite: now, lastAnswer: now))
    }

    deinit {
        close()
    }

    /// Counts one more request in a handler; false at the pipeline depth.
    func admitRequest(depth: Int) -> Bool {
        state.withLock { s in
            guard s.inFlight < depth else { return false }
            s.inFlight += 1
            return true
        }
    }

    func status() -> Status {
        state.withLock { s in
            Status(
                inFlight: s.inFlight, pendingBytes: s.outbox.count - s.sent, failed: s.failed,
                headSince: s.headSince, lastWrite: s.lastWrite, lastAnswer: s.lastAnswer)
        }
    }

    /// The handler's answer to one request of this connection (nil: none).
    func deliver(_ answer: [UInt8]?) {
        let now = MonotonicClock.now()
        state.withLock { s in
            s.inFlight = max(0, s.inFlight - 1)
            guard s.open else { return }
            s.lastWrite = now
            if let answer, !answer.isEmpty, let length = UInt16(exactly: answer.count) {
                if s.sent == s.outbox.count { s.headSince = now }
                s.outbox.append(UInt8(length >> 8))
                s.outbox.append(UInt8(length & 0xFF))
                s.outbox.append(contentsOf: answer)
                s.frameEnds.append(s.outbox.count)
                _ = Self.write(fd, &s, now: now)
            } else {
                s.lastAnswer = now
            }
        }
        wake.ring()
    }

    func flush() -> FlushResult {
        let now = MonotonicClock.now()
        return state.withLock { s in
            guard s.open else { return .failed }
            return Self.write(fd, &s, now: now)
        }
    }

    /// Sends as much of the outbox as the socket takes now, never blocking.
    private static func write(_ fd: Int32, _ s: inout State, now: Double) -> FlushResult {
        var result = FlushResult.none
        while s.sent < s.outbox.count {
            let sent = s.sent
            let n = s.outbox.withUnsafeBytes { buf in
                send(fd, buf.baseAddress.map { $0 + sent }, buf.count - sent, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            }
            if n > 0 {
                s.sent += n
                s.lastWrite = now
                result = .progress
                continue
            }
            let e = errno
            if n < 0, e == EAGAIN || e == EWOULDBLOCK || e == EINTR { break }
            s.failed = true
            return .failed
        }
        // Answers written completely: the next one's deadline starts now.
        while s.frameHead < s.frameEnds.count, s.frameEnds[s.frameHead] <= s.sent {
            s.frameHead += 1
            s.headSince = now
            s.lastAnswer = now
        }
        if s.sent == s.outbox.count {
            s.outbox.removeAll(keepingCapacity: s.outbox.count <= 65536)
            s.sent = 0
            s.frameEnds.removeAll(keepingCapacity: s.frameEnds.count <= 256)
            s.frameHead = 0
        } else if s.sent >= 65536, s.sent * 2 >= s.outbox.count {
            // A peer that reads steadily but never catches up: drop what it has read.
            let sent = s.sent
            s.outbox.removeFirst(sent)
            s.frameEnds = s.frameEnds[s.frameHead...].map { $0 - sent }
            s.frameHead = 0
            s.sent = 0
        }
        return result
    }

    /// Closes the descriptor; `abort` resets the connection (SO_LINGER 0) instead of leaving
    /// unsent answers to the kernel.
    func close(abort: Bool = false) {
        state.withLock { s in
            guard s.open else { return }
            if abort {
                var noLinger = linger(l_onoff: 1, l_linger: 0)
                _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &noLinger, socklen_t(MemoryLayout<linger>.size))
            }
            s.open = false
            s.outbox = []
            s.sent = 0
            s.frameEnds = []
            s.frameHead = 0
            closeDescriptor(fd)
        }
    }
}
