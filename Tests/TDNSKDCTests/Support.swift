import Foundation
import Synchronization
import TDNSCore
import TDNSCrypto
import TDNSWire

@testable import TDNSKDC

/// A clock tests can move.
final class TestClock: Sendable {
    private let value: Atomic<Int64>
    init(_ start: Int64) { value = Atomic(start) }
    var now: Int64 { value.load(ordering: .relaxed) }
    func advance(_ seconds: Int64) { value.add(seconds, ordering: .relaxed) }
    var kdcClock: WallClock { WallClock { [self] in self.now } }
}

/// Log lines, captured.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }
    func has(_ level: KDCLog.Level, containing text: String) -> Bool {
        all.contains { $0.hasPrefix(level.rawValue + ": ") && $0.contains(text) }
    }
    var log: KDCLog {
        KDCLog(clock: .fixed(0)) { [self] level, message in self.lines.withLock { $0.append("\(level.rawValue): \(message)") } }
    }
}

/// A KDC in a temporary directory with a node, a zone and a key.
final class KDCEnv {
    let root: String
    let clock: TestClock
    let logs = LogCapture()
    let kdc: KDC
    let nodeHPKE = HPKEPrivateKey.generate()
    let nodeJOSE: JOSEPrivateKey
    let otherHPKE = HPKEPrivateKey.generate()
    let controlZone = "kdc.example."

    init(chunkType: UInt16 = RRType.chunk.rawValue, start: Int64 = 1_800_000_000, listen: String = "127.0.0.1:15353") throws {
        root = NSTemporaryDirectory() + "tdns-kdc-test-" + UUID().uuidString
        clock = TestClock(start)
        kdc = KDC(stateDirectory: root + "/state", clock: clock.kdcClock, log: logs.log)
        nodeJOSE = try JOSEPrivateKey.generate()
        _ = try kdc.initialize(controlZone: controlZone, listen: listen, chunkType: chunkType)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    var stateBytes: Data { FileManager.default.contents(atPath: kdc.store.statePath) ?? Data() }

    /// krs1 (HPKE, legacy or not, in `layout`), krs2 (JOSE), zone example.com. with one P-256 KSK.
    @discardableResult
    func populate(legacy: Bool, layout: KDCHPKELayout? = nil) throws -> KDCKey {
        _ = try kdc.addNode(id: "krs1.example.", crypto: .hpke, hpkePublicKey: nodeHPKE.publicKey.hex, josePublicKey: nil,
                            notify: "127.0.0.1:15354", legacy: legacy, hpkeLayout: layout)
        _ = try kdc.addNode(id: "krs2.example.", crypto: .jose, hpkePublicKey: nil, josePublicKey: nodeJOSE.publicKey.jwkJSON(),
                            notify: "127.0.0.2:15354", legacy: legacy)
        _ = try kdc.addZone("example.com.")
        _ = try kdc.generateKey(zone: "example.com.", algorithm: 13, keyType: "ksk")
        let state = try kdc.store.load()
        return try require2(state.keys.first)
    }

    func distribute(_ node: String, _ op: KDCOperation = .rollKey, chunkSize: Int? = nil) throws -> KDCDistribution {
        _ = try kdc.distribute(target: .node(node), zone: op == .ping ? nil : "example.com.", keyTag: nil, operation: op, chunkSize: chunkSize)
        let state = try kdc.store.load()
        return try require2(state.distributions.last)
    }

    func records(_ d: KDCDistribution) throws -> [[UInt8]] { try kdc.store.readRecords(d.recordsFile) }

    func distribution(_ id: String) throws -> KDCDistribution { try require2(try kdc.store.load().distribution(id)) }

    /// Gives node `id` a fresh SIG(0) key (as enrollment would) and the capabilities listed.
    func enrollSIG0(_ id: String, capabilities: [String]) throws -> DNSSECPrivateKey {
        let sig0 = try DNSSECPrivateKey.generate(algorithm: .ed25519)
        let keyLine = KEYRecord(algorithm: 15, publicKey: sig0.dnskeyPublicKey).presentationLine(owner: try DNSName(id))
        try kdc.store.update { (state) throws(TDNSError) in
            if let i = state.nodes.firstIndex(where: { $0.id == id }) {
                state.nodes[i].sig0PublicKey = keyLine
                state.nodes[i].capabilities = capabilities
            }
        }
        return sig0
    }
}

struct Missing: Error {}
func require2<T>(_ v: T?) throws -> T {
    guard let v else { throw Missing() }
    return v
}

func hexBytes(_ s: String) throws -> [UInt8] {
    guard let b = Hex.decode(Array(s.utf8)) else { throw Missing() }
    return b
}

/// A query message for a CHUNK name.
func chunkQuery(_ name: String, id: UInt16 = 7, type: RRType = .chunk) throws -> [UInt8] {
    try TDNSMessages.chunkQuery(id: id, name: try DNSName(name), chunkType: type).serialize()
}

func parse(_ bytes: [UInt8]?) throws -> DNSMessage {
    try DNSMessage(wireEncoded: try require2(bytes))
}

/// The claims of a compact JWS, verified with `key`.
func jwtClaims(_ compact: [UInt8], key: JOSEPublicKey) throws -> JSONValue {
    try JSONValue.parse(try JWS.verify(compact, with: key))
}

/// The protected header of a compact JWS (not verified).
func jwsHeader(_ compact: [UInt8]) throws -> JSONValue {
    let first = try require2(compact.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).first)
    return try JSONValue.parse(try Base64URL.decode(first))
}
