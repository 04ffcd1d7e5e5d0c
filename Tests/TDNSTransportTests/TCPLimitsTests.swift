#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
import TDNSCore
import TDNSTestSupport
@testable import TDNSTransport

// Issue 10, item 1: no thread per connection, per-message deadlines on every TCP read and
// write (server and clients), per-source limits. In the serialized transport suite: several
// checks measure wall-clock bounds or the process's threads and mappings.

/// `count` addresses 127.0.<base>.1, 127.0.<base>.2, … (all local on Linux's 127.0.0.0/8).
private func sources(_ count: Int, base: UInt8 = 9) -> [SocketAddress] {
    (0..<count).map { i in SocketAddress(bytes: [127, 0, base &+ UInt8(i / 250), UInt8(i % 250 + 1)], port: 0) }
}

/// Re-measures `value` for up to 2 s until `ok` holds: other suites of this process start and
/// stop threads meanwhile, so one reading is not a verdict.
private func settles(_ value: () -> Int, _ ok: (Int) -> Bool) -> (Bool, Int) {
    var last = value()
    for _ in 0..<10 {
        if ok(last) { return (true, last) }
        sleepMilliseconds(200)
        last = value()
    }
    return (ok(last), last)
}

extension TransportTests {
    // MARK: threads and mappings

    @Test("no thread per connection: threads and mappings constant with 60 open and after 2,000 connections")
    func noThreadPerConnection() throws {
        let server = try echoServer(udp: false, options: .init(maxConnections: 128, maxConnectionsPerSource: 128))
        defer { server.stop() }
        _ = try DNSClient.exchange(query(id: 1), server: server.boundAddress, over: .tcp, timeout: 2)
        let threadsBefore = threadCount()
        let mapsBefore = mappingCount()

        // 60 connections open at once, each answered: a thread per connection would show 60 more.
        let open = try (0..<60).map { _ in try RawTCP(server.boundAddress) }
        for (i, c) in open.enumerated() {
            try c.sendFramed(query(id: UInt16(i)))
            #expect(try c.receiveFramed() == echo(query(id: UInt16(i))))
        }
        let (fewThreads, threadsOpen) = withExtendedLifetime(open) { settles(threadCount) { $0 - threadsBefore < 20 } }
        #expect(fewThreads, "\(threadsBefore) threads before, \(threadsOpen) with 60 connections open")

        // 2,000 connections one after the other (8 client threads): a stack left behind per
        // connection would add 4,000 mappings.
        let failures = Atomic<Int>(0)
        let joins = (0..<8).map { t in
            inBackground {
                for i in 0..<250 {
                    let q = query(id: UInt16(t * 250 + i))
                    if (try? DNSClient.exchange(q, server: server.boundAddress, over: .tcp, timeout: 5)) != echo(q) {
                        failures.add(1, ordering: .relaxed)
                    }
                }
            }
        }
        for join in joins { _ = join() }
        #expect(failures.load(ordering: .relaxed) == 0)
        let (sameThreads, threadsAfter) = settles(threadCount) { abs($0 - threadsBefore) < 20 }
        #expect(sameThreads, "\(threadsBefore) threads before, \(threadsAfter) after 2,000 connections")
        let (sameMaps, mapsAfter) = settles(mappingCount) { $0 - mapsBefore < 200 }
        #expect(sameMaps, "\(mapsBefore) mappings before, \(mapsAfter) after 2,000 connections")
    }

    // MARK: per-source limit

    @Test("maxConnectionsPerSource: a fourth connection from one address is closed at accept; other addresses still get in")
    func perSourceLimit() throws {
        let server = try echoServer(udp: false, options: .init(maxConnectionsPerSource: 3))
        defer { server.stop() }
        let a = try SocketAddress("127.0.0.1:0")
        let b = try SocketAddress("127.0.0.2:0")
        let first = try (0..<3).map { _ in try RawTCP(server.boundAddress, source: a) }
        for (i, c) in first.enumerated() {
            try c.sendFramed(query(id: UInt16(i)))
            #expect(try c.receiveFramed() == echo(query(id: UInt16(i))))
        }
        let fourth = try RawTCP(server.boundAddress, source: a)
        let elapsed = seconds { #expect(fourth.closedByPeer(within: 1)) }
        #expect(elapsed < 0.5)
        let other = try RawTCP(server.boundAddress, source: b)
        try other.sendFramed(query(id: 9))
        #expect(try other.receiveFramed() == echo(query(id: 9)))

        // A place freed is a place again.
        first[0].shutdownWrite()
        #expect(first[0].closedByPeer(within: 1))
        sleepMilliseconds(50)
        let again = try RawTCP(server.boundAddress, source: a)
        try again.sendFramed(query(id: 10))
        #expect(try again.receiveFramed() == echo(query(id: 10)))
    }

    @Test("options out of range are refused")
    func optionRanges() throws {
        for options in [
            DNSServer.Options(maxConnectionsPerSource: 0), DNSServer.Options(maxConnectionsPerSource: 4097),
            DNSServer.Options(tcpMessageTimeout: 0), DNSServer.Options(tcpMessageTimeout: .nan),
        ] {
            expectCode(.config) { _ = try DNSServer(listen: loopback, options: options) { _, _, _ in nil } }
        }
    }

    // MARK: read deadline

    @Test("a client dripping one byte at a time is closed after tcpMessageTimeout; another connection is answered meanwhile")
    func drippingClient() throws {
        let server = try echoServer(udp: false, options: .init(tcpIdleTimeout: 10, tcpMessageTimeout: 0.6))
        defer { server.stop() }
        let dripper = try RawTCP(server.boundAddress)
        // A complete query first: the connection is a real client's, then it starts dripping.
        try dripper.sendFramed(query(id: 1))
        #expect(try dripper.receiveFramed() == echo(query(id: 1)))

        let frame = DNSClient.frame(query(id: 2, payload: [UInt8](repeating: 1, count: 100)))
        let start = MonotonicClock.now()
        var closedAt: Double? = nil
        var answeredOther = false
        for (i, byte) in frame.enumerated() {
            if dripper.isClosedByPeer || !dripper.sendByte(byte) {
                closedAt = MonotonicClock.now()
                break
            }
            if i == 3 {
                // Meanwhile a normal client on another connection.
                answeredOther = try DNSClient.exchange(query(id: 3), server: server.boundAddress, over: .tcp, timeout: 1) == echo(query(id: 3))
            }
            sleepMilliseconds(50)  // 20 bytes a second: every byte well inside any idle timer
            if MonotonicClock.now() - start > 3 { break }
        }
        #expect(answeredOther)
        guard let closedAt else {
            Issue.record("the dripping connection was still open after 3 s")
            return
        }
        let elapsed = closedAt - start
        #expect(elapsed >= 0.55 && elapsed < 1.2, "closed \(elapsed) s after its first byte")
    }

    @Test("a request paused by the pipeline depth does not count against its message deadline")
    func pausedReaderKeepsItsClock() throws {
        // Depth 1, handler 0.5 s: the first bytes of the second request arrive with the first
        // and wait in the server's buffer while it does not read (0.5 s, longer than
        // tcpMessageTimeout); the rest comes 0.1 s later, and it is still answered.
        let server = try echoServer(udp: false, options: .init(pipelineDepth: 1, tcpMessageTimeout: 0.3)) { request, _, _ in
            sleepMilliseconds(500)
            return echo(request)
        }
        defer { server.stop() }
        let raw = try RawTCP(server.boundAddress)
        let second = DNSClient.frame(query(id: 2))
        try raw.send(DNSClient.frame(query(id: 1)) + Array(second[0..<5]))
        sleepMilliseconds(100)
        try raw.send(Array(second[5...]) + DNSClient.frame(query(id: 3)))
        var ids = Set<UInt16>()
        for _ in 0..<3 { ids.insert(messageID(try raw.receiveFramed(timeout: 3))) }
        #expect(ids == [1, 2, 3])
    }

    // MARK: write deadline

    @Test("a peer that reads answers one trickle at a time is closed after tcpMessageTimeout")
    func writeDeadline() throws {
        let big = [UInt8](repeating: 0x5A, count: 60_000)
        let server = try echoServer(udp: false, options: .init(tcpIdleTimeout: 30, tcpMessageTimeout: 0.5)) { request, _, _ in
            echo(request) + big
        }
        defer { server.stop() }
        let raw = try RawTCP(server.boundAddress)
        raw.shrinkReceiveBuffer()
        // 200 answers of 60 KB: far more than every buffer between the two ends holds.
        for i in 0..<200 { try raw.sendFramed(query(id: UInt16(i))) }
        let start = MonotonicClock.now()
        var closedAt: Double? = nil
        var buf = [UInt8](repeating: 0, count: 64)
        while MonotonicClock.now() - start < 5 {
            // Reads 64 bytes every 20 ms: progress, but no answer completes in time. (A reset
            // shows in poll(2) at once; recv would first return the data still buffered.)
            let n = buf.withUnsafeMutableBytes { recv(raw.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if raw.isClosedByPeer || n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) {
                closedAt = MonotonicClock.now()
                break
            }
            sleepMilliseconds(20)
        }
        guard let closedAt else {
            Issue.record("the slow reader was still connected after 5 s")
            return
        }
        // The first answers fill the kernel's buffers at once; the one that stalls then has 0.5 s.
        #expect(closedAt - start < 2.5, "closed after \(closedAt - start) s")
        // The server itself is fine.
        #expect(try DNSClient.exchange(query(id: 7), server: server.boundAddress, over: .tcp, timeout: 2).count > 60_000)
    }

    // MARK: slowloris

    @Test("300 dripping connections from one address: 8 are kept, the rest closed at accept; a query from elsewhere is answered")
    func drippersFromOneAddress() throws {
        let server = try echoServer(udp: false)
        defer { server.stop() }
        let attacker = try SocketAddress("127.0.0.1:0")
        var drippers: [RawTCP] = []
        for _ in 0..<300 {
            let c = try RawTCP(server.boundAddress, source: attacker)
            _ = c.sendByte(0)
            drippers.append(c)
        }
        sleepMilliseconds(300)
        let open = drippers.filter { !$0.isClosedByPeer }.count
        #expect(open == 8, "\(open) dripping connections kept")
        let q = query(id: 42)
        var answer: [UInt8] = []
        let elapsed = try seconds {
            answer = try DNSClient.exchange(q, server: server.boundAddress, over: .tcp, timeout: 2, source: try SocketAddress("127.0.0.2:0"))
        }
        #expect(answer == echo(q))
        #expect(elapsed < 0.5)
    }

    @Test("300 dripping connections, each from its own address, with room for them: a legitimate query is answered at once")
    func drippersWithRoom() throws {
        let server = try echoServer(udp: false, options: .init(maxConnections: 512))
        defer { server.stop() }
        var drippers: [RawTCP] = []
        for source in sources(300) {
            let c = try RawTCP(server.boundAddress, source: source)
            _ = c.sendByte(0)
            drippers.append(c)
        }
        sleepMilliseconds(200)
        #expect(drippers.filter { !$0.isClosedByPeer }.count == 300)
        let q = query(id: 43)
        var answer: [UInt8] = []
        let elapsed = try seconds { answer = try DNSClient.exchange(q, server: server.boundAddress, over: .tcp, timeout: 2) }
        #expect(answer == echo(q))
        #expect(elapsed < 0.5)
    }

    @Test("300 dripping connections from 300 addresses and a full server: the stalled ones make room, a legitimate query is answered")
    func drippersFillTheServer() throws {
        let server = try echoServer(udp: false)  // 64 connections
        defer { server.stop() }
        // A client that completed a query and is between two: kept (it is being served).
        let client = try RawTCP(server.boundAddress)
        try client.sendFramed(query(id: 1))
        #expect(try client.receiveFramed() == echo(query(id: 1)))
        var drippers: [RawTCP] = []
        for source in sources(300) {
            let c = try RawTCP(server.boundAddress, source: source)
            _ = c.sendByte(0)
            drippers.append(c)
        }
        sleepMilliseconds(300)
        let open = drippers.filter { !$0.isClosedByPeer }.count
        #expect(open == 63, "\(open) dripping connections open")
        let q = query(id: 44)
        var answer: [UInt8] = []
        let elapsed = try seconds { answer = try DNSClient.exchange(q, server: server.boundAddress, over: .tcp, timeout: 2) }
        #expect(answer == echo(q))
        #expect(elapsed < 0.5)
        // The client between two queries kept its place.
        #expect(!client.isClosedByPeer)
        try client.sendFramed(query(id: 2))
        #expect(try client.receiveFramed() == echo(query(id: 2)))
    }

    @Test("stop() returns within stopGrace with 200 open and dripping connections, and closes them all")
    func stopWithDrippers() throws {
        let server = try echoServer(udp: false, options: .init(maxConnections: 256, stopGrace: 0.2))
        var drippers: [RawTCP] = []
        for source in sources(200) {
            let c = try RawTCP(server.boundAddress, source: source)
            _ = c.sendByte(0)
            drippers.append(c)
        }
        sleepMilliseconds(100)
        let elapsed = seconds { server.stop() }
        #expect(elapsed < 0.5, "stop() took \(elapsed) s")
        sleepMilliseconds(100)
        #expect(drippers.allSatisfy { $0.isClosedByPeer })
    }

    // MARK: clients

    @Test("DNSClient over TCP: a server trickling its answer byte by byte costs the timeout, not longer")
    func clientTrickledAnswer() throws {
        let trickle = try TrickleServer(byteInterval: 0.05)  // a 14-byte answer takes 0.7 s
        defer { trickle.stop() }
        let elapsed = seconds {
            expectCode(.timeout) { _ = try DNSClient.exchange(query(id: 1), server: trickle.address, over: .tcp, timeout: 0.4) }
        }
        #expect(elapsed >= 0.35 && elapsed < 0.8, "\(elapsed) s")
    }

    @Test("PipelinedTCPClient: trickled bytes never extend the per-answer deadline")
    func pipelinedTrickledAnswer() throws {
        let trickle = try TrickleServer(byteInterval: 0.05)
        defer { trickle.stop() }
        let client = try PipelinedTCPClient(server: trickle.address, timeout: 0.4)
        let elapsed = seconds {
            expectCode(.timeout) { _ = try client.exchange([query(id: 1, payload: [UInt8](repeating: 0, count: 20))]) }
        }
        // Progress every 50 ms: the old "time without progress" rule would have waited 1.7 s.
        #expect(elapsed >= 0.35 && elapsed < 0.8, "\(elapsed) s")
        #expect(!client.isOpen)
    }

    @Test("PipelinedTCPClient: each answer has the timeout from the one before; totalTimeout bounds the exchange")
    func pipelinedPerAnswer() throws {
        // Whole answers 0.25 s apart: five take 1.25 s, more than the 0.6 s per answer.
        let slow = try TrickleServer(answerInterval: 0.25)
        defer { slow.stop() }
        let queries = (0..<5).map { query(id: UInt16($0)) }
        let client = try PipelinedTCPClient(server: slow.address, timeout: 0.6)
        var answers: [[UInt8]] = []
        let elapsed = try seconds { answers = try client.exchange(queries) }
        #expect(answers == queries.map(echo))
        #expect(elapsed > 1.0)

        let bounded = try PipelinedTCPClient(server: slow.address, timeout: 0.6)
        let cut = seconds { expectCode(.timeout) { _ = try bounded.exchange(queries, totalTimeout: 0.7) } }
        #expect(cut >= 0.65 && cut < 1.0, "\(cut) s")
        expectCode(.malformed) { _ = try client.exchange(queries, totalTimeout: -1) }
    }
}
