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
    /// `--metrics`: Prometheus metrics over HTTP (``KDCMetricsExposition``); nil when off.
    let metricsServer: HTTPMetricsServer?

    /// Timeout of one NOTIFY exchange (the Go KDC uses miekg's ~2 s default, PROTOCOL §13).
    public static let notifyTimeout = 2.0

    /// Binds the listen address (from the state, or `listen` to override it, e.g. port 0 in
    /// tests); serves nothing until ``start()``. `metrics` (`IP:port`) also serves `GET /metrics`.
    public init(kdc: KDC, listen: String? = nil, workers: Int = 4, metrics: String? = nil) throws(TDNSError) {
        // Checked first: a bad --metrics is reported as such, before anything is bound.
        let metricsAddress = try metrics.map { (text) throws(TDNSError) -> SocketAddress in
            guard let address = try? SocketAddress(text), address.port > 0 else {
                throw .config("--metrics: \"\(text)\" is not IP:port")
            }
            return address
        }
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
        self.metricsServer = try metricsAddress.map { (address) throws(TDNSError) -> HTTPMetricsServer in
            // The state as `status --json` reads it: currentState() re-reads kdc.json when
            // another process changed it.
            try HTTPMetricsServer(listen: address) { KDCMetricsExposition.render(service.currentState()) }
        }
        self.notifier = KDCNotifier(service: service) { request, address in
            guard let server = try? SocketAddress(address) else { return nil }
            return try? DNSClient.exchange(request, server: server, over: .udp, timeout: Self.notifyTimeout)
        }
    }

    public var boundAddress: SocketAddress { server.boundAddress }

    public func start() throws(TDNSError) {
        try server.start()
        if let metricsServer {
            do throws(TDNSError) {
                try metricsServer.start()
            } catch {
                server.stop()
                throw error
            }
            service.log.info("serving metrics on http://\(metricsServer.boundAddress)/metrics")
        }
        service.log.info("serving control zone \(service.controlZone) on \(server.boundAddress) (UDP and TCP)")
    }

    public var metricsAddress: SocketAddress? { metricsServer?.boundAddress }

    public func stop() {
        metricsServer?.stop()
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
