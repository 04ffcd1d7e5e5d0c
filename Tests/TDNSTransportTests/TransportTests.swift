#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
import TDNSCore
import TDNSTestSupport
import TDNSWire
@testable import TDNSTransport

/// Servers and clients on 127.0.0.1 (and ::1) with ephemeral ports. Serialized: several tests
/// measure wall-clock bounds, which parallel load on a 2-core machine would blur.
@Suite("DNS transport", .serialized)
struct TransportTests {
    /// A started echo server; the caller stops it.
    func echoServer(
        udp: Bool = true, tcp: Bool = true, options: DNSServer.Options = .init(),
        _ handler: @escaping DNSServer.Handler = { request, _, _ in echo(request) }
    ) throws -> DNSServer {
        let server = try DNSServer(listen: loopback, udp: udp, tcp: tcp, options: options, handler: handler)
        try server.start()
        return server
    }

    // MARK: round trips

    @Test("UDP and TCP round trips; the handler sees the peer and the transport")
    func roundTrips() throws {
        let seen = Mutex<[(SocketAddress, DNSTransportKind)]>([])
        let server = try echoServer { request, peer, transport in
            seen.withLock { $0.append((peer, transport)) }
            return echo(request)
        }
        defer { server.stop() }
        #expect(server.boundAddress.port != 0)
        #expect(server.boundAddress.host == "127.0.0.1")

        let q = query(id: 0x1234, payload: Array("udp".utf8))
        let a = try DNSClient.exchange(q, server: server.boundAddress, over: .udp, timeout: 2)
        #expect(a == echo(q))

        let big = query(id: 0x4321, payload: [UInt8](repeating: 0xAB, count: 60_000))
        let b = try DNSClient.exchange(big, server: server.boundAddress, over: .tcp, timeout: 2)
        #expect(b == echo(big))

        let calls = seen.withLock { $0 }
        #expect(calls.map(\.1) == [.udp, .tcp])
        #expect(calls.allSatisfy { $0.0.host == "127.0.0.1" && $0.0.port != 0 })
    }

    @Test("a TDNSWire message survives the trip, and the source address is the one asked for")
    func wireMessageAndSource() throws {
        let server = try echoServer { request, peer, _ in
            guard var m = try? DNSMessage(wireEncoded: request) else { return nil }
            m.flags.qr = true
            m.flags.aa = true
            // The peer's address goes back in an A record, so the client can check its source.
            m.answers = [ResourceRecord(name: m.questions[0].name, type: .a, rrClass: .in, ttl: 0, rdata: peer.addressBytes)]
            return try? m.serialize()
        }
        defer { server.stop() }
        let name = try DNSName("distid.control.example.")
        let q = try DNSMessage(id: 777, questions: [Question(name: name, type: .a)]).serialize()
        for transport in [DNSTransportKind.udp, .tcp] {
            let source = try SocketAddress("127.0.0.2:0")
            let wire = try DNSClient.exchange(q, server: server.boundAddress, over: transport, timeout: 2, source: source)
            let answer = try DNSMessage(wireEncoded: wire)
            #expect(answer.id == 777)
            #expect(answer.flags.qr && answer.flags.aa)
            #expect(answer.answers.first?.rdata == [127, 0, 0, 2], "\(transport)")
        }
        expectCode(.config) {
            _ = try DNSClient.exchange(q, server: server.boundAddress, over: .udp, timeout: 1, source: try SocketAddress("[::1]:0"))
        }
    }

    @Test("IPv6 loopback round trips")
    func ipv6() throws {
        let server = try DNSServer(listen: try SocketAddress("[::1]:0")) { request, peer, _ in
            peer.family == .ipv6 ? echo(request) : nil
        }
        try server.start()
        defer { server.stop() }
        #expect(server.boundAddress.description.hasPrefix("[::1]:"))
        let q = query(id: 6)
        #expect(try DNSClient.exchange(q, server: server.boundAddress, over: .udp, timeout: 2) == echo(q))
        #expect(try DNSClient.exchange(q, server: server.boundAddress, over: .tcp, timeout: 2) == echo(q))
    }

    @Test("UDP only and TCP only servers")
    func singleTransport() throws {
        let udpOnly = try echoServer(tcp: false)
        defer { udpOnly.stop() }
        let tcpOnly = try echoServer(udp: false)
        defer { tcpOnly.stop() }
        let q = query(id: 9)
        #expect(try DNSClient.exchange(q, server: udpOnly.boundAddress, over: .udp, timeout: 2) == echo(q))
        #expect(try DNSClient.exchange(q, server: tcpOnly.boundAddress, over: .tcp, timeout: 2) == echo(q))
        expectCode(.network) { _ = try DNSClient.exchange(q, server: udpOnly.boundAddress, over: .tcp, timeout: 2) }
        expectCode(.config) { _ = try DNSServer(listen: loopback, udp: false, tcp: false) { _, _, _ in nil } }
    }

    // MARK: TC fallback

    @Test("a truncated UDP answer is retried over TCP")
    func truncationFallback() throws {
        let full = [UInt8](repeating: 0x5A, count: 3000)
        let server = try echoServer { request, _, transport in
            var answer = echo(Array(request.prefix(12)))
            if transport == .udp {
                answer[2] |= 0x02  // TC
                return answer
            }
            return answer + full
        }
        defer { server.stop() }
        let q = query(id: 0xBEEF)
        let udp = try DNSClient.exchange(q, server: server.boundAddress, over: .udp, timeout: 2)
        #expect(DNSClient.isTruncated(udp))
        let answer = try DNSClient.exchangeWithFallback(q, server: server.boundAddress, timeout: 2, tcpTimeout: 3)
        #expect(!DNSClient.isTruncated(answer))
        #expect(answer.count == 12 + full.count)
        #expect(messageID(answer) == 0xBEEF)
    }

    @Test("no fallback when the UDP answer is complete")
    func noFallback() throws {
        let server = try echoServer(tcp: false)
        defer { server.stop() }
        let q = query(id: 1)
        #expect(try DNSClient.exchangeWithFallback(q, server: server.boundAddress, timeout: 2) == echo(q))
    }

    // MARK: failures

    @Test("a server that never answers: .timeout after about the timeout")
    func timeout() throws {
        let server = try echoServer { _, _, _ in nil }
        defer { server.stop() }
        for transport in [DNSTransportKind.udp, .tcp] {
            let elapsed = seconds {
                expectCode(.timeout, "\(transport)") {
                    _ = try DNSClient.exchange(query(id: 1), server: server.boundAddress, over: transport, timeout: 0.3)
                }
            }
            #expect(elapsed >= 0.29 && elapsed < 1.5, "\(transport): \(elapsed) s")
        }
    }

    @Test("connection refused: .network")
    func refused() throws {
        // A port that was just free: bind, learn it, stop.
        let server = try DNSServer(listen: loopback) { _, _, _ in nil }
        let address = server.boundAddress
        server.stop()
        expectCode(.network) { _ = try DNSClient.exchange(query(id: 1), server: address, over: .tcp, timeout: 2) }
        expectCode(.network) { _ = try PipelinedTCPClient(server: address, timeout: 2) }
        // UDP to a closed port: the ICMP port unreachable ends the wait early.
        expectCode(.network) { _ = try DNSClient.exchange(query(id: 1), server: address, over: .udp, timeout: 2) }
    }

    @Test("bad queries and timeouts are refused before any I/O")
    func badArguments() throws {
        let address = try SocketAddress("127.0.0.1:9")
        expectCode(.malformed) { _ = try DNSClient.exchange([1, 2, 3], server: address, over: .udp, timeout: 1) }
        expectCode(.tooBig) { _ = try DNSClient.exchange([UInt8](repeating: 0, count: 65536), server: address, over: .tcp, timeout: 1) }
        for t in [0, -1, Double.nan, Double.infinity] {
            expectCode(.malformed) { _ = try DNSClient.exchange(query(id: 1), server: address, over: .udp, timeout: t) }
        }
        expectCode(.config) { _ = try DNSServer(listen: loopback, options: .init(workers: 0)) { _, _, _ in nil } }
        expectCode(.config) { _ = try DNSServer(listen: loopback, options: .init(tcpIdleTimeout: .nan)) { _, _, _ in nil } }
    }

    @Test("UDP: answers with another ID, without QR, too short or from elsewhere are ignored")
    func udpIgnoresStrays() throws {
        let fake = try RawUDP()
        let other = try RawUDP()
        let join = inBackground { () -> Bool in
            guard let (q, client) = fake.receive(timeout: 2) else { return false }
            var wrongID = echo(q)
            wrongID[1] ^= 0xFF
            other.send(echo(q), to: client)  // right ID, wrong source address
            fake.send(wrongID, to: client)
            fake.send(q, to: client)  // QR clear
            fake.send(Array(echo(q).prefix(11)), to: client)
            sleepMilliseconds(50)
            fake.send(echo(q) + [0xAA], to: client)
            return true
        }
        let answer = try DNSClient.exchange(query(id: 0x0102), server: fake.address, over: .udp, timeout: 2)
        #expect(join() == true)
        #expect(answer == echo(query(id: 0x0102)) + [0xAA])
    }

    @Test("TCP: a non-DNS answer is .dns; a closed connection is .network")
    func tcpBadAnswers() throws {
        let server = try echoServer(udp: false) { request, _, _ in
            switch tag(request) {
            case 1: return [1, 2, 3]  // too short
            case 2: return request  // QR clear
            default: return echo(request)
            }
        }
        defer { server.stop() }
        expectCode(.dns) { _ = try DNSClient.exchange(query(id: 1, payload: [1]), server: server.boundAddress, over: .tcp, timeout: 2) }
        expectCode(.dns) { _ = try DNSClient.exchange(query(id: 1, payload: [2]), server: server.boundAddress, over: .tcp, timeout: 2) }
        #expect(try DNSClient.exchange(query(id: 1, payload: [3]), server: server.boundAddress, over: .tcp, timeout: 2).count == 13)
    }

    // MARK: pipelining

    @Test("1000 queries over one connection, answered out of order, all matched")
    func pipelining() throws {
        let order = Mutex<[UInt16]>([])
        let server = try echoServer(options: .init(workers: 4)) { request, _, _ in
            // Jitter: each worker sleeps 0–3 ms, so answers overtake each other.
            sleepMilliseconds(Int32(tag(request) % 4))
            order.withLock { $0.append(messageID(request)) }
            return echo(request)
        }
        defer { server.stop() }
        let client = try PipelinedTCPClient(server: server.boundAddress, timeout: 5)
        defer { client.close() }
        var rng = SystemRandomNumberGenerator()
        let ids = Array(Set((0..<3000).map { _ in UInt16.random(in: 0...UInt16.max, using: &rng) })).prefix(1000)
        let queries = ids.map { id in query(id: id, payload: [UInt8.random(in: 0...255, using: &rng), UInt8(id & 0xFF), UInt8(id >> 8)]) }
        let answers = try client.exchange(queries, window: 32)
        #expect(answers.count == 1000)
        #expect(answers == queries.map(echo))
        let completion = order.withLock { $0 }
        #expect(completion.count == 1000)
        #expect(completion != queries.map(messageID), "answers were expected to complete out of order")

        // The connection stays usable for a second exchange.
        let more = (0..<10).map { query(id: UInt16($0), payload: [9]) }
        #expect(try client.exchange(more, window: 3) == more.map(echo))
    }

    @Test("pipelining errors: duplicate query IDs, unknown or duplicated answers, missing answers")
    func pipeliningErrors() throws {
        let server = try echoServer(udp: false) { request, _, _ in
            switch tag(request) {
            case 1: return echo(query(id: messageID(request) &+ 1, payload: [1]))  // unknown ID
            case 2: return nil  // never answered
            default: return echo(request)
            }
        }
        defer { server.stop() }
        let client = try PipelinedTCPClient(server: server.boundAddress, timeout: 0.3)
        expectCode(.malformed) { _ = try client.exchange([query(id: 5), query(id: 5)]) }
        expectCode(.malformed) { _ = try client.exchange([query(id: 5)], window: 0) }
        // Argument errors do not close the connection.
        #expect(try client.exchange([query(id: 5)]) == [echo(query(id: 5))])
        #expect(try client.exchange([]) == [])

        #expect(client.isOpen)
        expectCode(.dns) { _ = try client.exchange([query(id: 10, payload: [1])]) }
        // Any failure closes the connection.
        #expect(!client.isOpen)
        expectCode(.network) { _ = try client.exchange([query(id: 5)]) }

        let second = try PipelinedTCPClient(server: server.boundAddress, timeout: 0.3)
        let elapsed = seconds {
            expectCode(.timeout) { _ = try second.exchange([query(id: 1), query(id: 2, payload: [2]), query(id: 3)]) }
        }
        #expect(elapsed < 1.5)
    }

    @Test("a duplicated answer is .dns")
    func duplicatedAnswer() throws {
        // The second query's answer carries the ID of the first, answered already.
        let server = try echoServer(udp: false) { request, _, _ in
            tag(request) == 7 ? echo(query(id: 1)) : echo(request)
        }
        defer { server.stop() }
        let client = try PipelinedTCPClient(server: server.boundAddress, timeout: 2)
        // Window 1: query 1 is answered first, then query 2 is answered with ID 1 again.
        expectCode(.dns) { _ = try client.exchange([query(id: 1), query(id: 2, payload: [7])], window: 1) }
    }

    @Test("the server closing mid-exchange is .network")
    func serverClosesMidExchange() throws {
        let gate = Gate()
        let server = try echoServer(udp: false, options: .init(stopGrace: 0.1)) { request, _, _ in
            gate.wait()
            return echo(request)
        }
        let client = try PipelinedTCPClient(server: server.boundAddress, timeout: 5)
        let join = inBackground { capture { () throws(TDNSError) in try client.exchange((0..<100).map { query(id: UInt16($0)) }) } }
        while gate.entered.load(ordering: .relaxed) == 0 { sleepMilliseconds(1) }
        server.stop()
        gate.release()
        guard case .failure(let error)? = join() else {
            Issue.record("the exchange should have failed")
            return
        }
        #expect(error.code == .network)
    }

    @Test("close() from another thread interrupts a running exchange")
    func closeInterrupts() throws {
        let server = try echoServer(udp: false) { _, _, _ in nil }
        defer { server.stop() }
        let client = try PipelinedTCPClient(server: server.boundAddress, timeout: 10)
        let started = Atomic<Bool>(false)
        let join = inBackground {
            started.store(true, ordering: .releasing)
            return capture { () throws(TDNSError) in try client.exchange([query(id: 1)]) }
        }
        while !started.load(ordering: .acquiring) { sleepMilliseconds(1) }
        sleepMilliseconds(50)
        let elapsed = seconds { client.close() }
        #expect(elapsed < 1.0)
        if case .failure(let e)? = join() { #expect(e.code == .network) } else { Issue.record("expected .network") }
        #expect(!client.isOpen)
        client.close()
        expectCode(.network) { _ = try client.exchange([query(id: 2)]) }
    }

    // MARK: stop

    @Test("stop() with open connections and a client mid-stream returns within 1 s")
    func promptStop() throws {
        let server = try echoServer { request, _, _ in
            sleepMilliseconds(2)
            return echo(request)
        }
        let idle = try (0..<5).map { _ in try RawTCP(server.boundAddress) }
        let halfFrame = try RawTCP(server.boundAddress)
        try halfFrame.send([0x01, 0x00, 0xAA])  // 256 bytes announced, 1 sent
        let client = try PipelinedTCPClient(server: server.boundAddress, timeout: 5)
        let started = Atomic<Bool>(false)
        let join = inBackground {
            capture { () throws(TDNSError) in
                started.store(true, ordering: .releasing)
                return try client.exchange((0..<5000).map { query(id: UInt16($0)) }, window: 64)
            }
        }
        while !started.load(ordering: .acquiring) { sleepMilliseconds(1) }
        sleepMilliseconds(100)
        let elapsed = seconds { server.stop() }
        #expect(elapsed < 1.0, "stop() took \(elapsed) s")
        if case .failure(let error)? = join() {
            #expect(error.code == .network)
        } else {
            Issue.record("the client mid-stream should have seen the connection end")
        }
        for connection in idle + [halfFrame] {
            #expect(connection.closedByPeer(within: 1))
        }
        server.stop()  // idempotent
    }

    @Test("stop() does not wait for a stuck handler longer than stopGrace")
    func stopWithStuckHandler() throws {
        let gate = Gate()
        let server = try echoServer(options: .init(workers: 2, stopGrace: 0.2)) { request, _, _ in
            gate.wait()
            return echo(request)
        }
        let address = server.boundAddress
        let udpJoin = inBackground { capture { () throws(TDNSError) in try DNSClient.exchange(query(id: 1), server: address, over: .udp, timeout: 1) } }
        let tcpJoin = inBackground { capture { () throws(TDNSError) in try DNSClient.exchange(query(id: 2), server: address, over: .tcp, timeout: 3) } }
        while gate.entered.load(ordering: .relaxed) < 2 { sleepMilliseconds(1) }
        let elapsed = seconds { server.stop() }
        #expect(elapsed >= 0.19 && elapsed < 1.0, "stop() took \(elapsed) s")
        // The port is free again at once: the listening sockets are closed.
        let again = try DNSServer(listen: address) { request, _, _ in echo(request) }
        try again.start()
        defer { again.stop() }
        gate.release()
        // The stuck handlers finish now but send nothing: the TCP peer saw the end at stop.
        if case .failure(let e)? = tcpJoin() { #expect(e.code == .network) } else { Issue.record("TCP should fail") }
        // The UDP client may get its answer from the new server (same port, same query); either way it ends.
        _ = udpJoin()
    }

    @Test("stop() before start(), twice, and from deinit; start() after stop() fails")
    func lifeCycle() throws {
        let a = try DNSServer(listen: loopback) { _, _, _ in nil }
        a.stop()
        a.stop()
        expectCode(.network) { try a.start() }
        var address = loopback
        do {
            let b = try echoServer()
            try b.start()  // already running: no-op
            address = b.boundAddress
            #expect(try DNSClient.exchange(query(id: 3), server: address, over: .udp, timeout: 2) == echo(query(id: 3)))
            _ = try PipelinedTCPClient(server: address, timeout: 2)  // an open connection at deinit
        }
        // b's deinit stopped it: the port can be bound again without reusePort.
        let c = try DNSServer(listen: address) { _, _, _ in nil }
        c.stop()
    }

    @Test("a handler may stop its own server")
    func stopFromHandler() throws {
        let box = Mutex<DNSServer?>(nil)
        let server = try DNSServer(listen: loopback) { request, _, _ in
            let me = box.withLock { $0 }
            me?.stop()
            return echo(request)
        }
        box.withLock { $0 = server }
        try server.start()
        let elapsed = seconds {
            expectCode(.timeout) { _ = try DNSClient.exchange(query(id: 1), server: server.boundAddress, over: .udp, timeout: 0.5) }
        }
        #expect(elapsed < 1.5)
        expectCode(.network) { _ = try DNSClient.exchange(query(id: 2), server: server.boundAddress, over: .tcp, timeout: 0.5) }
        server.stop()
        box.withLock { $0 = nil }
    }

    @Test("starting and stopping servers leaks neither descriptors nor threads")
    func noLeaks() throws {
        func socketCount() -> Int {
            // Only sockets: other suites in the same process may open files meanwhile.
            guard let dir = opendir("/proc/self/fd") else { return -1 }
            defer { closedir(dir) }
            var count = 0
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                var target = [CChar](repeating: 0, count: 256)
                let n = readlink("/proc/self/fd/\(name)", &target, 255)
                if n > 0, String(decoding: target[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self).hasPrefix("socket:") { count += 1 }
            }
            return count
        }
        let socketsBefore = socketCount()
        let threadsBefore = threadCount()
        for i in 0..<20 {
            let server = try echoServer()
            let q = query(id: UInt16(i))
            _ = try DNSClient.exchange(q, server: server.boundAddress, over: .udp, timeout: 2)
            let c = try PipelinedTCPClient(server: server.boundAddress, timeout: 2)
            _ = try c.exchange([q])
            server.stop()
            c.close()
        }
        // Each cycle used at least 9 sockets and 6 threads, so a leak would show 20 times over.
        // Other suites in this process may hold a few meanwhile: re-measure before judging.
        var extraSockets = 0
        var extraThreads = 0
        for _ in 0..<10 {
            extraSockets = socketCount() - socketsBefore
            extraThreads = threadCount() - threadsBefore
            if extraSockets < 20, extraThreads < 20 { break }
            sleepMilliseconds(200)
        }
        #expect(extraSockets < 20)
        #expect(extraThreads < 20)
    }

    // MARK: reusePort

    @Test("two servers with reusePort on one port; after the first stops the second answers")
    func reusePort() throws {
        let first = try DNSServer(listen: loopback, reusePort: true) { request, _, _ in echo(request) + [1] }
        try first.start()
        let second = try DNSServer(listen: first.boundAddress, reusePort: true) { request, _, _ in echo(request) + [2] }
        try second.start()
        defer { second.stop() }
        #expect(second.boundAddress == first.boundAddress)
        // Without reusePort the port is taken.
        expectCode(.network) { _ = try DNSServer(listen: first.boundAddress) { _, _, _ in nil } }

        var seen = Set<UInt8>()
        for i in 0..<40 {
            let a = try DNSClient.exchange(query(id: UInt16(i)), server: first.boundAddress, over: i % 2 == 0 ? .udp : .tcp, timeout: 2)
            if let last = a.last { seen.insert(last) }
        }
        #expect(seen.isSubset(of: [1, 2]) && !seen.isEmpty)

        first.stop()
        for i in 0..<20 {
            for transport in [DNSTransportKind.udp, .tcp] {
                let a = try DNSClient.exchange(query(id: UInt16(i)), server: second.boundAddress, over: transport, timeout: 2)
                #expect(a.last == 2, "\(transport) answered by the stopped server")
            }
        }
    }

    // MARK: framing and limits

    @Test("malformed TCP framing closes that connection and nothing else")
    func malformedFraming() throws {
        let server = try echoServer()
        defer { server.stop() }
        let lengthZero = try RawTCP(server.boundAddress)
        try lengthZero.send([0, 0])
        #expect(lengthZero.closedByPeer(within: 2))

        let lengthOne = try RawTCP(server.boundAddress)
        try lengthOne.send([0, 1, 0x42])
        lengthOne.shutdownWrite()
        #expect(lengthOne.closedByPeer(within: 2))

        let truncated = try RawTCP(server.boundAddress)
        try truncated.send([0, 40] + query(id: 1))  // 40 announced, 12 sent, then EOF
        truncated.shutdownWrite()
        #expect(truncated.closedByPeer(within: 2))

        let prefixOnly = try RawTCP(server.boundAddress)
        try prefixOnly.send([0])
        prefixOnly.shutdownWrite()
        #expect(prefixOnly.closedByPeer(within: 2))

        // An answer (QR set) sent to the server is ignored; the next query is answered.
        let ok = try RawTCP(server.boundAddress)
        try ok.sendFramed(echo(query(id: 50)))
        try ok.sendFramed(query(id: 51))
        #expect(try ok.receiveFramed() == echo(query(id: 51)))

        #expect(try DNSClient.exchange(query(id: 2), server: server.boundAddress, over: .tcp, timeout: 2) == echo(query(id: 2)))
        #expect(try DNSClient.exchange(query(id: 3), server: server.boundAddress, over: .udp, timeout: 2) == echo(query(id: 3)))
    }

    @Test("short or QR-set datagrams get no handler call")
    func udpDropsJunk() throws {
        let calls = Atomic<Int>(0)
        let server = try echoServer { request, _, _ in
            calls.add(1, ordering: .relaxed)
            return echo(request)
        }
        defer { server.stop() }
        let raw = try RawUDP()
        raw.send([1, 2, 3], to: server.boundAddress)
        raw.send(echo(query(id: 4)), to: server.boundAddress)
        raw.send([], to: server.boundAddress)
        #expect(raw.receive(timeout: 0.2) == nil)
        #expect(try DNSClient.exchange(query(id: 5), server: server.boundAddress, over: .udp, timeout: 2) == echo(query(id: 5)))
        #expect(calls.load(ordering: .relaxed) == 1)
    }

    @Test("a nil answer: the UDP client times out, the TCP connection stays usable")
    func nilAnswer() throws {
        let server = try echoServer { request, _, _ in tag(request) == 0 && request.count > 12 ? nil : echo(request) }
        defer { server.stop() }
        expectCode(.timeout) {
            _ = try DNSClient.exchange(query(id: 1, payload: [0]), server: server.boundAddress, over: .udp, timeout: 0.3)
        }
        let raw = try RawTCP(server.boundAddress)
        try raw.sendFramed(query(id: 1, payload: [0]))
        try raw.sendFramed(query(id: 2, payload: [1]))
        #expect(try raw.receiveFramed() == echo(query(id: 2, payload: [1])))
        try raw.sendFramed(query(id: 3, payload: [1]))
        #expect(try raw.receiveFramed() == echo(query(id: 3, payload: [1])))
    }

    @Test("connections beyond maxConnections are closed; idle ones time out")
    func connectionLimits() throws {
        let server = try echoServer(options: .init(maxConnections: 2, tcpIdleTimeout: 0.4))
        defer { server.stop() }
        let a = try RawTCP(server.boundAddress)
        let b = try RawTCP(server.boundAddress)
        try a.sendFramed(query(id: 1))
        #expect(try a.receiveFramed() == echo(query(id: 1)))
        try b.sendFramed(query(id: 2))
        #expect(try b.receiveFramed() == echo(query(id: 2)))
        let c = try RawTCP(server.boundAddress)
        #expect(c.closedByPeer(within: 1))
        // a and b idle out after 0.4 s; then there is room again.
        let elapsed = seconds { #expect(a.closedByPeer(within: 2)) }
        #expect(elapsed < 1.5)
        #expect(b.closedByPeer(within: 1))
        #expect(try DNSClient.exchange(query(id: 3), server: server.boundAddress, over: .tcp, timeout: 2) == echo(query(id: 3)))
    }

    @Test("a client that sends but never reads is cut off after the idle timeout")
    func clientNeverReads() throws {
        let calls = Atomic<Int>(0)
        let server = try echoServer(udp: false, options: .init(tcpIdleTimeout: 0.5)) { request, _, _ in
            calls.add(1, ordering: .relaxed)
            return echo(request)
        }
        defer { server.stop() }
        let raw = try RawTCP(server.boundAddress)
        // Send until the socket has not taken a byte for 0.3 s: every buffer on the way is full.
        let frame = DNSClient.frame(query(id: 1, payload: [UInt8](repeating: 7, count: 4000)))
        var sent = 0
        var stalledSince = MonotonicClock.now()
        while MonotonicClock.now() - stalledSince < 0.3, sent < 64 << 20 {
            let n = frame.withUnsafeBytes { send(raw.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if n > 0 {
                sent += n
                stalledSince = MonotonicClock.now()
            } else {
                sleepMilliseconds(5)
            }
        }
        #expect(sent < 64 << 20, "the server never stopped reading")
        sleepMilliseconds(1000)
        #expect(raw.closedByPeer(within: 2))
        #expect(calls.load(ordering: .relaxed) * 4014 < sent, "the server answered everything it was sent")
    }

    @Test("a client that half-closes after sending still gets every answer")
    func halfClose() throws {
        let server = try echoServer(udp: false) { request, _, _ in
            sleepMilliseconds(20)
            return echo(request)
        }
        defer { server.stop() }
        let raw = try RawTCP(server.boundAddress)
        for i in 0..<5 { try raw.sendFramed(query(id: UInt16(i))) }
        raw.shutdownWrite()
        var ids = Set<UInt16>()
        for _ in 0..<5 { ids.insert(messageID(try raw.receiveFramed())) }
        #expect(ids == [0, 1, 2, 3, 4])
        #expect(raw.closedByPeer(within: 1))
    }
}
