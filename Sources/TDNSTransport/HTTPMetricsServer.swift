#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import TDNSCore

/// A tiny HTTP/1.x responder for Prometheus scrapes: `GET /metrics` and nothing else, small
/// enough to run inside named or knotd for months.
///
/// It is the event-loop pattern of ``DNSServer``'s TCP side (one thread, one poll(2) over a
/// wake-up socket, the listener and every connection; deadlines are plain numbers the loop
/// checks), cut down to one request per connection:
/// - one thread for the whole server, created by ``start()`` and joined by ``stop()``; never a
///   thread per connection;
/// - ``Options/maxConnections`` open connections at most and ``Options/maxConnectionsPerSource``
///   per peer address; more are closed at accept (a scraper needs one);
/// - a request (line and headers) of at most ``Options/requestLimit`` bytes, else
///   `431 Request Header Fields Too Large`; a body is never read;
/// - ``Options/requestTimeout`` per connection from its accept to the last byte of the answer:
///   bytes trickling in or out never extend it (slowloris);
/// - every answer has `Connection: close` and a Content-Length, and the connection is closed
///   once it is written: `GET /metrics` (a query string is ignored) → 200 with the text from
///   the render closure, another path → 404, another method → 405 (`Allow: GET`), anything
///   that is not an HTTP/1.0 or 1.1 request line → 400.
///
/// The render closure runs on the server's thread, once per scrape; it must be quick and must
/// not block (it reads counters in memory).
public final class HTTPMetricsServer: Sendable {
    /// Builds the exposition text for one scrape.
    public typealias Render = @Sendable () -> String

    public struct Options: Sendable, Hashable {
        public var maxConnections: Int
        public var maxConnectionsPerSource: Int
        /// Bytes of request line and headers.
        public var requestLimit: Int
        /// Seconds from accept until the answer is written.
        public var requestTimeout: Double

        public init(maxConnections: Int = 16, maxConnectionsPerSource: Int = 4, requestLimit: Int = 8192, requestTimeout: Double = 5) {
            self.maxConnections = maxConnections
            self.maxConnectionsPerSource = maxConnectionsPerSource
            self.requestLimit = requestLimit
            self.requestTimeout = requestTimeout
        }

        func validated() throws(TDNSError) -> Options {
            guard (1...1024).contains(maxConnections), (1...maxConnections).contains(maxConnectionsPerSource),
                  (256...65536).contains(requestLimit)
            else { throw .config("metrics server: connection or request limits out of range") }
            var o = self
            o.requestTimeout = try validatedTimeout(requestTimeout, "metrics request timeout")
            return o
        }
    }

    private let core: HTTPMetricsCore
    /// The address actually bound (the port is filled in when 0 was asked for).
    public let boundAddress: SocketAddress

    /// Binds `listen` (TCP); serves nothing until ``start()``.
    public init(listen: SocketAddress, options: Options = Options(), render: @escaping Render) throws(TDNSError) {
        let options = try options.validated()
        let fd = try makeSocket(listen.family, .stream)
        do throws(TDNSError) {
            // A restart must not wait for TIME_WAIT connections of the old one; and named and
            // knotd start a reloaded module's instance before they stop the old one, so both
            // listen on the port for a moment (as the NOTIFY listener does).
            setIntOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
            setIntOption(fd, SOL_SOCKET, SO_REUSEPORT, 1)
            try bindSocket(fd, to: listen)
            guard Glibc.listen(fd, 64) == 0 else { throw .network("cannot listen on \(listen): \(errnoText())") }
            guard let local = localAddress(of: fd) else { throw .network("cannot read the bound metrics address: \(errnoText())") }
            boundAddress = local
            core = try HTTPMetricsCore(listener: fd, options: options, render: render)
        } catch {
            closeDescriptor(fd)
            throw error
        }
    }

    deinit { core.stop() }

    /// Starts the server's one thread. Idempotent while running; a stopped server cannot start
    /// again.
    public func start() throws(TDNSError) { try core.start() }

    /// Closes the listener and every connection and joins the thread (within one poll wake-up).
    /// Idempotent.
    public func stop() { core.stop() }
}

/// What the server's thread holds (never the public object, so dropping it stops the server).
final class HTTPMetricsCore: Sendable {
    let listener: Int32
    let options: HTTPMetricsServer.Options
    let render: HTTPMetricsServer.Render
    let wake: (read: Int32, write: Int32)
    let stopping = StopToken()

    private enum Phase { case created, started, stopped }
    private struct Registry {
        var phase = Phase.created
        var thread: JoinableThread?
        var listenerOpen = true
    }
    private let registry = Mutex(Registry())

    init(listener: Int32, options: HTTPMetricsServer.Options, render: @escaping HTTPMetricsServer.Render) throws(TDNSError) {
        self.listener = listener
        self.options = options
        self.render = render
        self.wake = try makeWakePair()
    }

    deinit {
        closeListener()
        closeDescriptor(wake.read)
        closeDescriptor(wake.write)
    }

    func start() throws(TDNSError) {
        let failure: TDNSError? = registry.withLock { r in
            switch r.phase {
            case .started: return nil
            case .stopped: return .network("the metrics server was stopped; create a new one")
            case .created: break
            }
            guard let t = try? JoinableThread(stackSize: 256 * 1024, { [self] in
                var loop = HTTPMetricsLoop(core: self)
                loop.run()
                closeListener()
            }) else { return .internalFailure("cannot create the metrics thread") }
            r.thread = t
            r.phase = .started
            return nil
        }
        if let failure { throw failure }
    }

    func stop() {
        let thread: JoinableThread? = registry.withLock { r in
            guard r.phase != .stopped else { return nil }
            r.phase = .stopped
            let t = r.thread
            r.thread = nil
            return t
        }
        stopping.stop()
        signalWake(wake.write)
        if let thread {
            // The loop never blocks outside poll(2) and leaves at the wake-up; a render closure
            // that calls stop() itself must not wait for its own thread.
            if thread.isCurrent { thread.detach() } else { thread.join() }
        } else {
            closeListener()
        }
    }

    func closeListener() {
        let close = registry.withLock { r in
            let open = r.listenerOpen
            r.listenerOpen = false
            return open
        }
        if close { closeDescriptor(listener) }
    }
}

/// One connection: its request so far, then its answer.
final class HTTPMetricsSession {
    let fd: Int32
    let source: [UInt8]
    let deadline: Double
    var input: [UInt8] = []
    var output: [UInt8] = []
    var sent = 0
    var answering = false
    var closed = false

    init(fd: Int32, source: [UInt8], deadline: Double) {
        self.fd = fd
        self.source = source
        self.deadline = deadline
    }
}

/// The loop on the server's thread.
struct HTTPMetricsLoop {
    let core: HTTPMetricsCore
    let options: HTTPMetricsServer.Options
    private var sessions: [HTTPMetricsSession] = []
    private var perSource: [[UInt8]: Int] = [:]
    private var fds: [pollfd] = []
    private var chunk = [UInt8](repeating: 0, count: 4096)
    /// Out of descriptors or memory: the listener is not polled until then.
    private var acceptPausedUntil = 0.0

    init(core: HTTPMetricsCore) {
        self.core = core
        self.options = core.options
    }

    mutating func run() {
        defer {
            for s in sessions { drop(s) }
            sessions = []
        }
        while !core.stopping.isStopped {
            var now = MonotonicClock.now()
            var wakeAt = now + 1
            let listening = now >= acceptPausedUntil
            if !listening { wakeAt = min(wakeAt, acceptPausedUntil) }
            fds.removeAll(keepingCapacity: true)
            fds.append(pollfd(fd: core.wake.read, events: pollIn, revents: 0))
            fds.append(pollfd(fd: listening ? core.listener : -1, events: pollIn, revents: 0))
            var kept = 0
            for i in sessions.indices {
                let s = sessions[i]
                if s.closed { continue }
                if now >= s.deadline {
                    drop(s)
                    continue
                }
                sessions[kept] = s
                kept += 1
                fds.append(pollfd(fd: s.fd, events: s.answering ? pollOut : pollIn, revents: 0))
                wakeAt = min(wakeAt, s.deadline)
            }
            sessions.removeLast(sessions.count - kept)
            let timeout = Int32(max(0, min(1000, ((wakeAt - now) * 1000).rounded(.up))))
            guard pollDescriptors(&fds, timeout: timeout) > 0 else { continue }
            if fds[0].revents != 0 { return }
            now = MonotonicClock.now()
            for i in 0..<kept where fds[2 + i].revents != 0 {
                handle(sessions[i], fds[2 + i].revents)
            }
            if listening, fds[1].revents != 0 { acceptBatch(now: now) }
        }
    }

    private mutating func acceptBatch(now: Double) {
        for _ in 0..<16 {
            guard let (fd, peer) = acceptConnection(core.listener) else {
                let e = errno
                if e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM { acceptPausedUntil = now + 0.1 }
                return
            }
            guard let peer, sessions.count < options.maxConnections,
                  perSource[peer.addressBytes, default: 0] < options.maxConnectionsPerSource
            else {
                closeDescriptor(fd)
                continue
            }
            sessions.append(HTTPMetricsSession(fd: fd, source: peer.addressBytes, deadline: now + options.requestTimeout))
            perSource[peer.addressBytes, default: 0] += 1
        }
    }

    private mutating func handle(_ s: HTTPMetricsSession, _ revents: Int16) {
        if revents & Int16(POLLERR | POLLNVAL) != 0 { return drop(s) }
        if s.answering {
            while s.sent < s.output.count {
                let n = s.output.withUnsafeBytes { b in
                    send(s.fd, b.baseAddress.map { $0 + s.sent }, b.count - s.sent, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                }
                if n > 0 {
                    s.sent += n
                } else {
                    let e = errno
                    if n < 0, e == EAGAIN || e == EWOULDBLOCK || e == EINTR { return }
                    return drop(s)
                }
            }
            // Written: half-close first so the peer sees the end of the answer, not a reset.
            _ = shutdown(s.fd, Int32(SHUT_WR))
            return drop(s)
        }
        let n = chunk.withUnsafeMutableBytes { recv(s.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        if n == 0 { return drop(s) }  // closed before a complete request
        if n < 0 {
            let e = errno
            if e != EAGAIN, e != EWOULDBLOCK, e != EINTR { drop(s) }
            return
        }
        s.input.append(contentsOf: chunk[0..<n])
        if let end = Self.headerEnd(s.input) {
            answer(s, HTTPMetricsLoop.respond(to: Array(s.input[0..<end]), render: core.render))
        } else if s.input.count > options.requestLimit {
            answer(s, Self.response(431, "Request Header Fields Too Large", body: "request too large\n"))
        }
    }

    private func answer(_ s: HTTPMetricsSession, _ bytes: [UInt8]) {
        s.input = []
        s.output = bytes
        s.answering = true
    }

    private mutating func drop(_ s: HTTPMetricsSession) {
        guard !s.closed else { return }
        s.closed = true
        closeDescriptor(s.fd)
        if let n = perSource[s.source], n > 1 { perSource[s.source] = n - 1 } else { perSource[s.source] = nil }
    }

    /// Where the request's line and headers end — the index of the line break before the
    /// blank line (CRLF CRLF, or bare LF as RFC 9112 §2.2 lets a server accept) — or nil.
    static func headerEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 2 else { return nil }
        for i in 1..<b.count where b[i] == 0x0A {
            if b[i - 1] == 0x0A { return i - 1 }  // LF LF
            if i >= 2, b[i - 1] == 0x0D, b[i - 2] == 0x0A {  // (CR) LF CR LF
                return i >= 3 && b[i - 3] == 0x0D ? i - 3 : i - 2
            }
        }
        return nil
    }

    /// The answer to one request (its line and headers, without the blank line).
    static func respond(to head: [UInt8], render: HTTPMetricsServer.Render) -> [UInt8] {
        let lineEnd = head.firstIndex(of: 0x0A) ?? head.count
        var line = Array(head[0..<lineEnd])
        if line.last == 0x0D { line.removeLast() }
        let parts = line.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3, let method = String(validating: parts[0], as: UTF8.self),
              let target = String(validating: parts[1], as: UTF8.self), let version = String(validating: parts[2], as: UTF8.self),
              version == "HTTP/1.0" || version == "HTTP/1.1", !method.isEmpty, target.hasPrefix("/")
        else { return response(400, "Bad Request", body: "bad request\n") }
        let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? target
        guard method == "GET" else { return response(405, "Method Not Allowed", body: "only GET\n", extra: "Allow: GET\r\n") }
        guard path == "/metrics" else { return response(404, "Not Found", body: "only /metrics\n") }
        return response(200, "OK", body: render(), contentType: PrometheusText.contentType)
    }

    static func response(_ code: Int, _ reason: String, body: String, contentType: String = "text/plain; charset=utf-8", extra: String = "") -> [UInt8] {
        let bodyBytes = Array(body.utf8)
        let head = "HTTP/1.1 \(code) \(reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(bodyBytes.count)\r\n\(extra)Connection: close\r\n\r\n"
        return Array(head.utf8) + bodyBytes
    }
}
