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
/// ## Threads
///
/// ``start()`` creates, and ``stop()`` joins, a fixed set of threads — however many
/// connections come and go, the server never creates another:
/// - one **UDP loop**: reads datagrams and queues them (at most ``Options/udpQueueLimit``
///   waiting; more are dropped, as a full socket buffer would);
/// - one **TCP event loop**: polls the listening socket, every open connection and a wake-up
///   socket; accepts, reads RFC 1035 §4.2.2 length-prefixed requests, queues them, writes
///   answers the workers could not write at once, and enforces every limit and deadline below;
/// - ``Options/workers`` **handler workers**, shared by UDP and TCP: the only threads that call
///   the handler, so a slow handler never stalls reading, accepting or stopping.
///
/// Why one event loop rather than a thread per connection (detached, or from a bounded pool):
/// a connection then costs one descriptor and a few hundred bytes plus its buffers, not a
/// thread stack (512 KiB of address space and two mappings each: a thread per connection left
/// behind by thousands of connections is what exhausted `vm.max_map_count` inside the host,
/// and creating one per connection is a stack mmap and a clone in named's or knotd's process
/// for every peer). A pool of N connection threads would still need the deadlines below and
/// would let N slow peers occupy it; the loop's cost per connection is the same whatever the
/// peer does. Per-connection timers are plain numbers the loop checks. poll(2) is O(n) per
/// wake-up, which is fine for n ≤ ``Options/maxConnections`` (at most 4096; a KDC or KRS
/// control channel has a handful of connections), and it needs nothing beyond POSIX.
///
/// ## TCP limits and deadlines
///
/// - ``Options/maxConnections`` open connections at most. When full, a new connection takes
///   the place of the longest-waiting connection that is doing nothing for anyone — no request
///   in a handler, no answer to write, and either no complete request yet or none for a second
///   (RFC 7766 §6.2.3 lets a server close idle connections under pressure) — or is closed at
///   once when there is no such connection. So slow or silent peers, even from many addresses,
///   cannot lock legitimate clients out, and connections that are being served are never cut.
/// - ``Options/maxConnectionsPerSource`` connections per peer IP address; more from that address
///   are closed at accept (one address cannot fill the server).
/// - ``Options/tcpMessageTimeout`` per message: a request must be complete within it from its
///   first byte, and each answer must be fully written within it from when it is the next one
///   to write. Bytes trickling in or out never extend these deadlines, so one byte every few
///   seconds no longer keeps a connection (the reader's clock pauses only while the server
///   itself stops reading: pipeline depth or outbox full).
/// - ``Options/tcpIdleTimeout``: a connection without any traffic for that long is closed,
///   unless a handler is working on one of its requests and no answer is waiting to be written
///   — the allowance between messages.
/// - Reading stops while ``Options/pipelineDepth`` requests are in handlers or 256 KiB of
///   answers wait for a peer that does not read, so memory per connection stays bounded.
/// - Answers are written the moment a handler returns them — by the worker itself when the
///   socket takes them, else by the loop — in the order answers complete, not the order of
///   requests (RFC 7766 §6.2.1.1). A framing error (length < 12) closes the connection; so does
///   a send error.
///
/// The loops sleep in poll(2) on their sockets and on a wake-up socket that ``stop()`` makes
/// readable, so they leave within microseconds. A handler cannot be interrupted: ``stop()``
/// waits at most ``Options/stopGrace`` for busy workers, then detaches them; such a worker
/// finishes its handler call, sends nothing, and exits. ``stop()`` therefore returns within
/// `stopGrace` plus scheduling delay (0.5 s by default), whatever the handlers do.
///
/// Messages shorter than the 12-byte header and messages with QR set are dropped without a
/// handler call (never answer an answer). Handlers must return complete messages; the server
/// neither truncates UDP answers nor sets TC (that is the handler's job, RFC 1035 §4.2.1).
/// Errors sending a UDP answer are ignored.
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
        /// Open TCP connections at most (1–4096); see the type's documentation for what happens
        /// to a connection beyond it.
        public var maxConnections: Int
        /// Open TCP connections from one peer IP address at most (1–4096); further connections
        /// from that address are closed at accept.
        public var maxConnectionsPerSource: Int
        /// Unanswered requests per TCP connection before it stops reading (1–65535).
        public var pipelineDepth: Int
        /// Seconds a TCP connection may sit without traffic (between messages), unless a
        /// handler is working on one of its requests.
        public var tcpIdleTimeout: Double
        /// Seconds within which a TCP request must be complete from its first byte, and each
        /// answer fully written from when it is the next to write; trickled bytes do not extend it.
        public var tcpMessageTimeout: Double
        /// UDP requests waiting for a worker at most (1–65535).
        public var udpQueueLimit: Int
        /// Seconds ``DNSServer/stop()`` waits for handler calls in progress.
        public var stopGrace: Double

        public init(
            workers: Int = 4, maxConnections: Int = 64, maxConnectionsPerSource: Int = 8, pipelineDepth: Int = 32,
            tcpIdleTimeout: Double = 10, tcpMessageTimeout: Double = 5, udpQueueLimit: Int = 256, stopGrace: Double = 0.5
        ) {
            self.workers = workers
            self.maxConnections = maxConnections
            self.maxConnectionsPerSource = maxConnectionsPerSource
            self.pipelineDepth = pipelineDepth
            self.tcpIdleTimeout = tcpIdleTimeout
            self.tcpMessageTimeout = tcpMessageTimeout
            self.udpQueueLimit = udpQueueLimit
            self.stopGrace = stopGrace
        }

        func validated() throws(TDNSError) -> Options {
            guard (1...256).contains(workers) else { throw .config("workers must be 1–256") }
            guard (1...4096).contains(maxConnections) else { throw .config("maxConnections must be 1–4096") }
            guard (1...4096).contains(maxConnectionsPerSource) else { throw .config("maxConnectionsPerSource must be 1–4096") }
            guard (1...65535).contains(pipelineDepth) else { throw .config("pipelineDepth must be 1–65535") }
            guard (1...65535).contains(udpQueueLimit) else { throw .config("udpQueueLimit must be 1–65535") }
            guard tcpIdleTimeout.isFinite, tcpIdleTimeout > 0 else { throw .config("tcpIdleTimeout must be positive") }
            guard tcpMessageTimeout.isFinite, tcpMessageTimeout > 0 else { throw .config("tcpMessageTimeout must be positive") }
            guard stopGrace.isFinite, stopGrace >= 0 else { throw .config("stopGrace must not be negative") }
            var out = self
            out.tcpIdleTimeout = min(tcpIdleTimeout, 86_400)
            out.tcpMessageTimeout = min(tcpMessageTimeout, 86_400)
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
        // A backlog deeper than the connection limit: the loop drains it in batches and refuses
        // or places each connection at once, and a legitimate SYN must not be dropped (and
        // retried a second later) while attackers reconnect as fast as they are refused.
        let sockets = try Self.bindListeners(
            listen, udp: udp, tcp: tcp, reusePort: reusePort, backlog: Int32(min(max(options.maxConnections, 256), 1024))
        )
        let wake: (read: Int32, write: Int32)
        let loopWake: WakeSignal
        do throws(TDNSError) {
            wake = try makeWakePair()
            do throws(TDNSError) {
                loopWake = try WakeSignal()
            } catch {
                closeDescriptor(wake.read)
                closeDescriptor(wake.write)
                throw error
            }
        } catch {
            closeDescriptor(sockets.udp)
            closeDescriptor(sockets.tcp)
            throw error
        }
        self.boundAddress = sockets.bound
        self.options = options
        self.core = ServerCore(
            handler: handler, options: options, wake: wake, loopWake: loopWake,
            udp: sockets.udp >= 0 ? UDPEndpoint(fd: sockets.udp) : nil, tcpListener: sockets.tcp
        )
    }

    deinit {
        core.stop()
    }

    /// Starts the UDP loop, the TCP event loop and the workers. Calling it again while
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
    /// Workers ring it when an answer is delivered, so the TCP loop re-examines its connections.
    let loopWake: WakeSignal
    let udp: UDPEndpoint?
    /// -1 without TCP. Used without the lock by the TCP loop, which alone closes it once
    /// started; before that stop() or deinit closes it.
    let tcpListener: Int32
    let stopping = StopToken()
    let registry = Mutex(Registry())

    struct ThreadRecord {
        let thread: JoinableThread
        /// Handler workers may be stuck in a handler; I/O threads never block.
        let isWorker: Bool
        var finished = false
    }

    struct Registry {
        enum Phase { case created, started, stopped }
        var phase = Phase.created
        var threads: [Int: ThreadRecord] = [:]
        var nextID = 0
        var udpLoopStarted = false
        var tcpLoopStarted = false
        var tcpListenerOpen = true
    }

    init(
        handler: @escaping DNSServer.Handler, options: DNSServer.Options, wake: (read: Int32, write: Int32),
        loopWake: WakeSignal, udp: UDPEndpoint?, tcpListener: Int32
    ) {
        self.handler = handler
        self.options = options
        self.queue = WorkQueue(udpLimit: options.udpQueueLimit)
        self.wake = wake
        self.loopWake = loopWake
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

    var isStopping: Bool { stopping.isStopped }

    /// Stack of the two I/O threads, which run only poll loops (buffers live on the heap).
    static let ioStackSize = 512 * 1024

    /// Answer bytes a TCP connection may hold for a peer that does not read before the
    /// connection stops reading requests.
    static let outboxLimit = 256 * 1024

    /// How long a connection must have been without a complete request or answer before a new
    /// connection may take its place when the server is full (one without any complete request
    /// yet may always be replaced): a client between two queries of a burst keeps its place.
    static let evictionGrace = 1.0

    // MARK: life cycle

    func start() throws(TDNSError) {
        let failure: TDNSError? = registry.withLock { r in
            switch r.phase {
            case .started: return nil
            case .stopped: return .network("the DNS server was stopped; create a new one")
            case .created: r.phase = .started
            }
            for _ in 0..<options.workers {
                guard spawn(&r, isWorker: true, { $0.runWorker() }) else { return .internalFailure("cannot create a handler thread") }
            }
            if let udp {
                guard spawn(&r, stackSize: Self.ioStackSize, { $0.runUDPLoop(udp) }) else {
                    return .internalFailure("cannot create the UDP thread")
                }
                r.udpLoopStarted = true
            }
            if tcpListener >= 0 {
                guard spawn(&r, stackSize: Self.ioStackSize, { $0.runTCPLoop() }) else {
                    return .internalFailure("cannot create the TCP thread")
                }
                r.tcpLoopStarted = true
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
    ) -> Bool {
        let id = r.nextID
        r.nextID += 1
        guard let thread = try? JoinableThread(stackSize: stackSize, { [self] in
            body(self)
            self.registry.withLock { r in r.threads[id]?.finished = true }
        }) else { return false }
        r.threads[id] = ThreadRecord(thread: thread, isWorker: isWorker)
        return true
    }

    func stop() {
        let previous: Registry.Phase = registry.withLock { r in
            let p = r.phase
            r.phase = .stopped
            return p
        }
        guard previous != .stopped else { return }
        stopping.stop()
        signalWake(wake.write)
        queue.close()

        // The loops close their sockets (the TCP loop every connection too, so peers see the
        // end at once, even while their requests sit in a handler) when they see the wake-up.
        let (udpOwned, tcpOwned) = registry.withLock { r in (r.udpLoopStarted, r.tcpLoopStarted) }
        if !udpOwned { udp?.close() }
        if !tcpOwned { closeTCPListener() }

        // Workers get `stopGrace`; I/O threads leave within one poll wake-up and are always
        // waited for (a 1 s cap only guards against the impossible), so the sockets they own
        // are closed when stop() returns. A handler may call stop() itself: never wait for the
        // calling thread.
        let workerDeadline = Deadline(after: options.stopGrace)
        let ioDeadline = Deadline(after: max(options.stopGrace, 1))
        while true {
            let (workersBusy, ioBusy) = registry.withLock { r in
                var workers = false
                var io = false
                for t in r.threads.values where !t.finished && !t.thread.isCurrent {
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
            if record.finished, !record.thread.isCurrent {
                record.thread.join()
            } else {
                // Still in a handler (or the caller itself): it exits on its own, holding this
                // core (and so its descriptors) until then.
                record.thread.detach()
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

    private func runTCPLoop() {
        var loop = TCPEventLoop(core: self)
        loop.run()
        closeTCPListener()
    }
}
