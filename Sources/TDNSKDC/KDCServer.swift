#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization
import TDNSCore
import TDNSTransport

/// `serve`: the KDC's DNS service on the listen address (UDP and TCP; TCP connections are
/// pipelined by TDNSTransport's server: queries are answered as they come) and the NOTIFY
/// sender. The DNS handling itself is ``KDCService/handle(request:peerHost:transport:)``.
public final class KDCServer: Sendable {
    public let service: KDCService
    public let notifier: KDCNotifier
    let server: DNSServer

    /// Timeout of one NOTIFY exchange (the Go KDC uses miekg's ~2 s default, PROTOCOL §13).
    public static let notifyTimeout = 2.0

    /// Binds the listen address (from the state, or `listen` to override it, e.g. port 0 in
    /// tests); serves nothing until ``start()``.
    public init(kdc: KDC, listen: String? = nil, workers: Int = 4) throws(TDNSError) {
        let service = try KDCService(kdc: kdc)
        let address = try SocketAddress(listen ?? service.currentState().config.listen)
        self.service = service
        self.server = try DNSServer(
            listen: address, udp: true, tcp: true, reusePort: false,
            // 256 connections for many nodes fetching at once; 16 per address, so that one
            // address (a node behind NAT, or an attacker) cannot take them all; each request
            // and each answer within 5 s, so a trickling peer is cut off (a node's own TCP
            // timer is 10 s per exchange, PROTOCOL §13).
            options: DNSServer.Options(
                workers: workers, maxConnections: 256, maxConnectionsPerSource: 16, pipelineDepth: 64,
                tcpIdleTimeout: 10, tcpMessageTimeout: 5)
        ) { request, peer, transport in
            service.handle(request: request, peerHost: peer.host, transport: transport == .tcp ? .tcp : .udp)
        }
        self.notifier = KDCNotifier(service: service) { request, address in
            guard let server = try? SocketAddress(address) else { return nil }
            return try? DNSClient.exchange(request, server: server, over: .udp, timeout: Self.notifyTimeout)
        }
    }

    public var boundAddress: SocketAddress { server.boundAddress }

    public func start() throws(TDNSError) {
        try server.start()
        service.log.info("serving control zone \(service.controlZone) on \(server.boundAddress) (UDP and TCP)")
    }

    public func stop() {
        server.stop()
    }

    /// Serves until SIGINT or SIGTERM: starts the DNS server, runs the NOTIFY rounds on the
    /// calling thread, stops cleanly.
    public func runUntilSignalled() throws(TDNSError) {
        let stopFlag = StopToken()
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let queue = DispatchQueue(label: "tdns-kdc.signals")
        let sources = [SIGINT, SIGTERM].map { sig -> DispatchSourceSignal in
            let s = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            s.setEventHandler { stopFlag.stop() }
            s.resume()
            return s
        }
        try start()
        notifier.run(shouldStop: { stopFlag.isStopped })
        service.log.info("stopping")
        stop()
        sources.forEach { $0.cancel() }
    }
}
