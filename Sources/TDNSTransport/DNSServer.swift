#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import TDNSCore

/// The transport a request arrived on or a query goes over.
public enum DNSTransportKind: String, Sendable {
    case udp, tcp
}

/// A DNS server on plain POSIX sockets and pthreads, small enough to run inside named or knotd.
///
/// ## Threads and bounds
///
/// ``start()`` creates, and ``stop()`` joins:
/// - one **UDP loop** thread: reads datagrams and queues them (at most
///   ``Options/udpQueueLimit`` waiting; more are dropped, as a full socket buffer would);
/// - one **TCP accept** thread: at most ``Options/maxConnections`` connections, extra ones are
///   closed at once;
/// - one thread **per TCP connection**: reads RFC 1035 §4.2.2 length-prefixed messages
///   continuously, queues each one (with ``Options/pipelineDepth`` requests in handlers or
///   256 KiB of answers the peer has not read yet, it stops reading until that drains: memory
///   per connection stays bounded), writes each answer the moment the handler
///   returns it — in the order answers complete, not the order of requests (RFC 7766 §6.2.1.1);
///   closes after ``Options/tcpIdleTimeout`` without traffic or on a framing error (length < 12);
/// - ``Options/workers`` **handler workers**, shared by UDP and TCP: the only threads that call
///   the handler, so a slow handler never stalls reading, accepting or stopping.
///
/// I/O threads sleep in poll(2) on their sockets and on a wake-up socket that ``stop()`` makes
/// readable, so they leave within microseconds. A handler cannot be interrupted: ``stop()``
/// waits at most ``Options/stopGrace`` for busy workers, then detaches them; such a worker
/// finishes its handler call, sends nothing, and exits. ``stop()`` therefore returns within
/// `stopGrace` plus scheduling delay (0.5 s by default), whatever the handlers do.
///
/// Messages shorter than the 12-byte header and messages with QR set are dropped without a
/// handler call (never answer an answer). Handlers must return complete messages; the server
/// neither truncates UDP answers nor sets TC (that is the handler's job, RFC 1035 §4.2.1).
/// Errors sending a UDP answer are ignored; a TCP send error closes the connection.
///
/// IPv6 sockets are IPv6-only: an IPv4 client must reach an IPv4 listener, and a peer address
/// is never IPv4-mapped.
///
/// The threads hold the server's internals, not the `DNSServer` object, so dropping the last
/// reference stops the server (`deinit` calls ``stop()``) — unless the handler itself holds the
/// server strongly: capture it weakly, or call ``stop()`` explicitly.
public final class DNSServer: Sendable {
    /// Called on a worker thread for each request; returns the answer, or nil for no answer.
    public typealias Handler = @Sendable (_ request: [UInt8], _ peer: SocketAddress, _ transport: DNSTransportKind) -> [UInt8]?

    /// Limits; the defaults suit a KDC or KRS control channel.
    public struct Options: Sendable, Hashable {
        /// Handler threads (1–256).
        public var workers: Int
        /// Open TCP connections at most (1–4096); further connections are closed on accept.
        public var maxConnections: Int
        /// Unanswered requests per TCP connection before it stops reading (1–65535).
        public var pipelineDepth: Int
        /// Seconds a TCP connection may sit without traffic and without pending answers.
        public var tcpIdleTimeout: Double
        /// UDP requests waiting for a worker at most (1–65535).
        public var udpQueueLimit: Int
        /// Seconds ``DNSServer/stop()`` waits for handler calls in progress.
        public var stopGrace: Double

        public init(
            workers: Int = 4, maxConnections: Int = 64, pipelineDepth: Int = 32, tcpIdleTimeout: Double = 10,
            udpQueueLimit: Int = 256, stopGrace: Double = 0.5
        ) {
            self.workers = workers
            self.maxConnections = maxConnections
            self.pipelineDepth = pipelineDepth
            self.tcpIdleTimeout = tcpIdleTimeout
            self.udpQueueLimit = udpQueueLimit
            self.stopGrace = stopGrace
        }

        func validated() throws(TDNSError) -> Options {
            guard (1...256).contains(workers) else { throw .config("workers must be 1–256") }
            guard (1...4096).contains(maxConnections) else { throw .config("maxConnections must be 1–4096") }
            guard (1...65535).contains(pipelineDepth) else { throw .config("pipelineDepth must be 1–65535") }
            guard (1...65535).contains(udpQueueLimit) else { throw .config("udpQueueLimit must be 1–65535") }
            guard tcpIdleTimeout.isFinite, tcpIdleTimeout > 0 else { throw .config("tcpIdleTimeout must be positive") }
            guard stopGrace.isFinite, stopGrace >= 0 else { throw .config("stopGrace must not be negative") }
            var out = self
            out.tcpIdleTimeout = min(tcpIdleTimeout, 86_400)
            out.stopGrace = min(stopGrace, 60)
            return out
        }
    }

    /// The address actually bound: with port 0 the kernel's ephemeral port, the same for UDP
    /// and TCP.
    public let boundAddress: SocketAddress
    public let options: Options
    private let core: ServerCore

    /// Creates the sockets and binds them at once (so ``boundAddress`` is known); serves
    /// nothing until ``start()``.
    ///
    /// With port 0 and both transports, UDP binds first and TCP then binds the same port; if
    /// that port is taken for TCP, both are retried on a new ephemeral port (8 attempts).
    ///
    /// - Parameter reusePort: sets SO_REUSEADDR and SO_REUSEPORT, so that a new instance can
    ///   bind the same address before this one stops — the way BIND and Knot reload modules.
    ///   While both are bound the kernel spreads datagrams and connections over them.
    /// - Throws: `.config` for neither transport or bad options, `.network` when a socket
    ///   cannot be created or bound.
    public init(
        listen: SocketAddress, udp: Bool = true, tcp: Bool = true, reusePort: Bool = false,
        options: Options = Options(), handler: @escaping Handler
    ) throws(TDNSError) {
        guard udp || tcp else { throw .config("a DNS server needs UDP, TCP or both") }
        let options = try options.validated()
        let sockets = try Self.bindListeners(
            listen, udp: udp, tcp: tcp, reusePort: reusePort, backlog: Int32(min(options.maxConnections, 1024))
        )
        let wake: (read: Int32, write: Int32)
        do {
            wake = try makeWakePair()
        } catch {
            closeDescriptor(sockets.udp)
            closeDescriptor(sockets.tcp)
            throw error
        }
        self.boundAddress = sockets.bound
        self.options = options
        self.core = ServerCore(
            handler: handler, options: options, wake: wake,
            udp: sockets.udp >= 0 ? UDPEndpoint(fd: sockets.udp) : nil, tcpListener: sockets.tcp
        )
    }

    deinit {
        core.stop()
    }

    /// Starts the UDP loop, the TCP accept thread and the workers. Calling it again while
    /// running does nothing.
    ///
    /// - Throws: `.network` after ``stop()`` (a stopped server cannot restart: create a new
    ///   one), `.internalFailure` when a thread cannot be created (everything is stopped then).
    public func start() throws(TDNSError) {
        try core.start()
    }

    /// Stops serving: wakes every thread, closes the listening sockets and every connection,
    /// and joins the threads. Returns within ``Options/stopGrace`` plus scheduling delay (see
    /// the type's documentation for handlers still running then). Idempotent; also called by
    /// `deinit`.
    public func stop() {
        core.stop()
    }

    private static func bindListeners(
        _ address: SocketAddress, udp: Bool, tcp: Bool, reusePort: Bool, backlog: Int32
    ) throws(TDNSError) -> (udp: Int32, tcp: Int32, bound: SocketAddress) {
        let attempts = address.port == 0 && udp && tcp ? 8 : 1
        var lastError = TDNSError(.network, "cannot bind to \(address)")
        for _ in 0..<attempts {
            var udpFD: Int32 = -1
            var tcpFD: Int32 = -1
            do throws(TDNSError) {
                var bound = address
                if udp {
                    udpFD = try makeSocket(address.family, .datagram)
                    if reusePort {
                        setIntOption(udpFD, SOL_SOCKET, SO_REUSEADDR, 1)
                        setIntOption(udpFD, SOL_SOCKET, SO_REUSEPORT, 1)
                    }
                    try bindSocket(udpFD, to: address)
                    guard let local = localAddress(of: udpFD) else { throw .network("cannot read the bound UDP address: \(errnoText())") }
                    bound = local
                }
                if tcp {
                    tcpFD = try makeSocket(address.family, .stream)
                    // Always: a restart must not wait for TIME_WAIT connections of the old one.
                    setIntOption(tcpFD, SOL_SOCKET, SO_REUSEADDR, 1)
                    if reusePort { setIntOption(tcpFD, SOL_SOCKET, SO_REUSEPORT, 1) }
                    try bindSocket(tcpFD, to: bound)
                    guard Glibc.listen(tcpFD, backlog) == 0 else { throw .network("cannot listen on \(bound): \(errnoText())") }
                    guard let local = localAddress(of: tcpFD) else { throw .network("cannot read the bound TCP address: \(errnoText())") }
                    bound = local
                }
                return (udpFD, tcpFD, bound)
            } catch {
                closeDescriptor(udpFD)
                closeDescriptor(tcpFD)
                lastError = error
            }
        }
        throw lastError
    }
}

// MARK: - the shared state behind a server

/// Everything the server's threads share. Threads hold this object, never the `DNSServer`, so
/// that dropping the last reference to the server runs its `deinit` (which stops it).
final class ServerCore: Sendable {
    let handler: DNSServer.Handler
    let options: DNSServer.Options
    let queue: WorkQueue
    /// Made readable once by stop() and never drained: every poll(2) in the server watches it.
    let wake: (read: Int32, write: Int32)
    let udp: UDPEndpoint?
    /// -1 without TCP. Used without the lock by the accept thread, which alone closes it once
    /// started; before that stop() or deinit closes it.
    let tcpListener: Int32
    let stopping = Atomic<Bool>(false)
    let registry = Mutex(Registry())

    struct ThreadRecord {
        let thread: pthread_t
        /// Handler workers may be stuck in a handler; I/O threads never block.
        let isWorker: Bool
        var finished = false
    }

    struct Registry {
        enum Phase { case created, started, stopped }
        var phase = Phase.created
        var threads: [Int: ThreadRecord] = [:]
        var nextID = 0
        var connections: [Int: TCPConnection] = [:]
        var udpLoopStarted = false
        var acceptLoopStarted = false
        var tcpListenerOpen = true
    }

    init(
        handler: @escaping DNSServer.Handler, options: DNSServer.Options, wake: (read: Int32, write: Int32),
        udp: UDPEndpoint?, tcpListener: Int32
    ) {
        self.handler = handler
        self.options = options
        self.queue = WorkQueue(udpLimit: options.udpQueueLimit)
        self.wake = wake
        self.udp = udp
        self.tcpListener = tcpListener
        registry.withLock { $0.tcpListenerOpen = tcpListener >= 0 }
    }

    deinit {
        udp?.close()
        closeTCPListener()
        closeDescriptor(wake.read)
        closeDescriptor(wake.write)
    }

    var isStopping: Bool { stopping.load(ordering: .acquiring) }

    /// Stack of the I/O threads, which run only poll loops (buffers live on the heap); up to
    /// `maxConnections` of them, so not 8 MiB each.
    static let ioStackSize = 512 * 1024

    /// Answer bytes a TCP connection may hold for a peer that does not read before the
    /// connection stops reading requests.
    static let outboxLimit = 256 * 1024

    // MARK: life cycle

    func start() throws(TDNSError) {
        let failure: TDNSError? = registry.withLock { r in
            switch r.phase {
            case .started: return nil
            case .stopped: return .network("the DNS server was stopped; create a new one")
            case .created: r.phase = .started
            }
            for _ in 0..<options.workers {
                guard spawn(&r, isWorker: true, { $0.runWorker() }) != nil else { return .internalFailure("cannot create a handler thread") }
            }
            if let udp {
                guard spawn(&r, stackSize: Self.ioStackSize, { $0.runUDPLoop(udp) }) != nil else {
                    return .internalFailure("cannot create the UDP thread")
                }
                r.udpLoopStarted = true
            }
            if tcpListener >= 0 {
                guard spawn(&r, stackSize: Self.ioStackSize, { $0.runAcceptLoop() }) != nil else {
                    return .internalFailure("cannot create the TCP accept thread")
                }
                r.acceptLoopStarted = true
            }
            return nil
        }
        if let failure {
            stop()
            throw failure
        }
    }

    /// Registers and starts a thread running `body`; called with the registry locked, so the
    /// thread's own bookkeeping at exit waits until it is registered.
    private func spawn(
        _ r: inout Registry, isWorker: Bool = false, stackSize: Int? = nil, _ body: @escaping @Sendable (ServerCore) -> Void
    ) -> Int? {
        let id = r.nextID
        r.nextID += 1
        guard let thread = spawnThread(stackSize: stackSize, { [self] in
            body(self)
            self.registry.withLock { r in
                r.threads[id]?.finished = true
                r.connections[id] = nil
            }
        }) else { return nil }
        r.threads[id] = ThreadRecord(thread: thread, isWorker: isWorker)
        return id
    }

    func stop() {
        let previous: Registry.Phase = registry.withLock { r in
            let p = r.phase
            r.phase = .stopped
            return p
        }
        guard previous != .stopped else { return }
        stopping.store(true, ordering: .releasing)
        signalWake(wake.write)
        queue.close()

        let (connections, udpOwned, tcpOwned) = registry.withLock { r in
            (Array(r.connections.values), r.udpLoopStarted, r.acceptLoopStarted)
        }
        // Peers see the end at once, even while their requests sit in a handler.
        for connection in connections { connection.shutdownForStop() }
        if !udpOwned { udp?.close() }
        if !tcpOwned { closeTCPListener() }

        // Workers get `stopGrace`; I/O threads leave within one poll wake-up and are always
        // waited for (a 1 s cap only guards against the impossible), so the sockets they own
        // are closed when stop() returns. A handler may call stop() itself: never wait for the
        // calling thread.
        let me = pthread_self()
        let workerDeadline = Deadline(after: options.stopGrace)
        let ioDeadline = Deadline(after: max(options.stopGrace, 1))
        while true {
            let (workersBusy, ioBusy) = registry.withLock { r in
                var workers = false
                var io = false
                for t in r.threads.values where !t.finished && pthread_equal(t.thread, me) == 0 {
                    if t.isWorker { workers = true } else { io = true }
                }
                return (workers, io)
            }
            if (!workersBusy || workerDeadline.expired) && (!ioBusy || ioDeadline.expired) { break }
            sleepMilliseconds(1)
        }
        let records = registry.withLock { r in
            let all = Array(r.threads.values)
            r.threads = [:]
            return all
        }
        for record in records {
            if record.finished, pthread_equal(record.thread, me) == 0 {
                pthread_join(record.thread, nil)
            } else {
                // Still in a handler (or the caller itself): it exits on its own, holding this
                // core (and so its descriptors) until then.
                pthread_detach(record.thread)
            }
        }
    }

    private func closeTCPListener() {
        let close = registry.withLock { r in
            let open = r.tcpListenerOpen
            r.tcpListenerOpen = false
            return open
        }
        if close { closeDescriptor(tcpListener) }
    }

    // MARK: workers

    private func runWorker() {
        while let job = queue.pop() {
            switch job.reply {
            case .udp(let endpoint):
                let answer = handler(job.request, job.peer, .udp)
                if let answer, !answer.isEmpty, answer.count <= 65535, !isStopping {
                    endpoint.send(answer, to: job.peer)
                }
            case .tcp(let connection):
                let answer = handler(job.request, job.peer, .tcp)
                connection.deliver(isStopping ? nil : answer)
            }
        }
    }

    // MARK: UDP

    private func runUDPLoop(_ endpoint: UDPEndpoint) {
        defer { endpoint.close() }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var fds = [pollfd(fd: endpoint.fd, events: pollIn, revents: 0), pollfd(fd: wake.read, events: pollIn, revents: 0)]
        while !isStopping {
            fds[0].revents = 0
            fds[1].revents = 0
            guard pollDescriptors(&fds, timeout: 1000) > 0 else { continue }
            if fds[1].revents != 0 { return }
            if fds[0].revents == 0 { continue }
            // A bounded batch per wake-up, so that stop() is noticed even under a flood.
            for _ in 0..<64 {
                var storage = sockaddr_storage()
                var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
                let n = buffer.withUnsafeMutableBytes { buf in
                    withUnsafeMutablePointer(to: &storage) { p in
                        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                            recvfrom(endpoint.fd, buf.baseAddress, buf.count, Int32(MSG_DONTWAIT), sa, &length)
                        }
                    }
                }
                if n < 0 {
                    let e = errno
                    if e == EAGAIN || e == EWOULDBLOCK { break }
                    continue  // a queued ICMP error or EINTR: the next datagram may be fine
                }
                guard n >= 12, buffer[2] & 0x80 == 0, let peer = SocketAddress(storage: storage), peer.port != 0 else {
                    continue
                }
                _ = queue.push(ServerJob(request: Array(buffer[0..<n]), peer: peer, reply: .udp(endpoint)))
            }
        }
    }

    // MARK: TCP

    private func runAcceptLoop() {
        defer { closeTCPListener() }
        var fds = [pollfd(fd: tcpListener, events: pollIn, revents: 0), pollfd(fd: wake.read, events: pollIn, revents: 0)]
        while !isStopping {
            fds[0].revents = 0
            fds[1].revents = 0
            guard pollDescriptors(&fds, timeout: 1000) > 0 else { continue }
            if fds[1].revents != 0 { return }
            for _ in 0..<64 {
                guard let (fd, peer) = acceptConnection(tcpListener) else {
                    let e = errno
                    if e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM {
                        // Out of descriptors or memory: the connection stays in the backlog and
                        // poll would report it again at once; back off instead of spinning.
                        var wakeOnly = [pollfd(fd: wake.read, events: pollIn, revents: 0)]
                        _ = pollDescriptors(&wakeOnly, timeout: 100)
                    }
                    break
                }
                admit(fd, peer)
            }
        }
    }

    private func admit(_ fd: Int32, _ peer: SocketAddress?) {
        guard let peer, let pair = try? makeWakePair() else {
            closeDescriptor(fd)
            return
        }
        let connection = TCPConnection(fd: fd, wake: pair, peer: peer)
        let admitted = registry.withLock { r in
            guard r.phase == .started, r.connections.count < options.maxConnections else { return false }
            guard let id = spawn(&r, stackSize: Self.ioStackSize, { $0.serveConnection(connection) }) else { return false }
            r.connections[id] = connection
            return true
        }
        if !admitted { connection.close() }
    }

    private func serveConnection(_ c: TCPConnection) {
        defer { c.close() }
        let depth = options.pipelineDepth
        let idle = options.tcpIdleTimeout
        var input: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        var readOpen = true
        var lastActivity = monotonicNow()
        var fds = [
            pollfd(fd: c.fd, events: 0, revents: 0),
            pollfd(fd: c.wakeRead, events: pollIn, revents: 0),
            pollfd(fd: wake.read, events: pollIn, revents: 0),
        ]
        while !isStopping {
            // Queue every complete request while below the pipeline depth.
            var consumed = 0
            while input.count - consumed >= 2 {
                let length = Int(input[consumed]) << 8 | Int(input[consumed + 1])
                // Shorter than a header: a broken or hostile client (RFC 7766 §8 allows closing).
                guard length >= 12 else { return }
                guard input.count - consumed >= 2 + length else { break }
                let start = consumed + 2
                if input[start + 2] & 0x80 != 0 {
                    consumed = start + length  // an answer sent to a server: ignore it
                    continue
                }
                guard c.admitRequest(depth: depth) else { break }
                let request = Array(input[start..<(start + length)])
                consumed = start + length
                guard queue.push(ServerJob(request: request, peer: c.peer, reply: .tcp(c))) else { return }
            }
            if consumed > 0 { input.removeFirst(consumed) }

            let status = c.status()
            if status.failed { return }
            if !readOpen, status.inFlight == 0, !status.pendingOutput { return }  // all answered after EOF
            let now = monotonicNow()
            // Idle: nothing in a handler and no traffic; or answers pending that the peer does
            // not read.
            if now - lastActivity >= idle, status.inFlight == 0 || status.pendingOutput { return }
            let wantRead = readOpen && status.inFlight < depth && status.pendingBytes < Self.outboxLimit
                && input.count < 2 + 65535
            fds[0].events = (wantRead ? pollIn : 0) | (status.pendingOutput ? pollOut : 0)
            fds[0].revents = 0
            fds[1].revents = 0
            fds[2].revents = 0
            let timeout = Int32(max(1, min(1000, ((lastActivity + idle - now) * 1000).rounded(.up))))
            guard pollDescriptors(&fds, timeout: timeout) > 0 else { continue }
            if fds[2].revents != 0 { return }
            if fds[1].revents != 0 { drainWake(c.wakeRead) }
            let revents = fds[0].revents
            if revents & Int16(POLLERR | POLLNVAL) != 0 { return }
            if revents & pollOut != 0 {
                switch c.flush() {
                case .failed: return
                case .progress: lastActivity = monotonicNow()
                case .none: break
                }
            }
            if wantRead, revents & (pollIn | Int16(POLLHUP)) != 0 {
                let n = chunk.withUnsafeMutableBytes { recv(c.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if n > 0 {
                    input.append(contentsOf: chunk[0..<n])
                    lastActivity = monotonicNow()
                } else if n == 0 {
                    readOpen = false  // the client may half-close and still wait for answers
                } else {
                    let e = errno
                    if e != EAGAIN, e != EWOULDBLOCK, e != EINTR { return }
                }
            } else if revents & Int16(POLLHUP) != 0 {
                return
            }
        }
    }
}

// MARK: - sockets shared with the workers

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

/// One accepted TCP connection. Its thread reads and polls; workers append answers to the
/// outbox (and try to send them at once) under the lock, then wake the thread. The descriptors
/// are closed under the same lock, so no worker ever touches a closed descriptor.
final class TCPConnection: Sendable {
    let fd: Int32
    let wakeRead: Int32
    let wakeWrite: Int32
    let peer: SocketAddress

    private struct State {
        var outbox: [UInt8] = []
        var sent = 0
        var inFlight = 0
        var failed = false
        var open = true
    }

    private let state = Mutex(State())

    enum FlushResult { case none, progress, failed }

    init(fd: Int32, wake: (read: Int32, write: Int32), peer: SocketAddress) {
        self.fd = fd
        self.wakeRead = wake.read
        self.wakeWrite = wake.write
        self.peer = peer
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

    func status() -> (inFlight: Int, pendingOutput: Bool, pendingBytes: Int, failed: Bool) {
        state.withLock { s in (s.inFlight, s.sent < s.outbox.count, s.outbox.count - s.sent, s.failed) }
    }

    /// The handler's answer to one request of this connection (nil: none).
    func deliver(_ answer: [UInt8]?) {
        state.withLock { s in
            s.inFlight = max(0, s.inFlight - 1)
            guard s.open else { return }
            if let answer, !answer.isEmpty, let length = UInt16(exactly: answer.count) {
                s.outbox.append(UInt8(length >> 8))
                s.outbox.append(UInt8(length & 0xFF))
                s.outbox.append(contentsOf: answer)
                _ = Self.write(fd, &s)
            }
            signalWake(wakeWrite)
        }
    }

    func flush() -> FlushResult {
        state.withLock { s in
            guard s.open else { return .failed }
            return Self.write(fd, &s)
        }
    }

    /// Sends as much of the outbox as the socket takes now, never blocking.
    private static func write(_ fd: Int32, _ s: inout State) -> FlushResult {
        var result = FlushResult.none
        while s.sent < s.outbox.count {
            let sent = s.sent
            let n = s.outbox.withUnsafeBytes { buf in
                send(fd, buf.baseAddress.map { $0 + sent }, buf.count - sent, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            }
            if n > 0 {
                s.sent += n
                result = .progress
                continue
            }
            let e = errno
            if n < 0, e == EAGAIN || e == EWOULDBLOCK || e == EINTR { break }
            s.failed = true
            return .failed
        }
        if s.sent == s.outbox.count {
            s.outbox.removeAll(keepingCapacity: s.outbox.count <= 65536)
            s.sent = 0
        }
        return result
    }

    /// Makes the peer see the end now; the connection thread closes the descriptors.
    func shutdownForStop() {
        state.withLock { s in
            if s.open { _ = shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    func close() {
        state.withLock { s in
            guard s.open else { return }
            s.open = false
            closeDescriptor(fd)
            closeDescriptor(wakeRead)
            closeDescriptor(wakeWrite)
        }
    }
}
