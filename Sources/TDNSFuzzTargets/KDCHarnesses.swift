#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization
import TDNSCore
import TDNSCrypto
import TDNSKDC
import TDNSWire

// Harnesses for the KDC's request parsing (issue 10): what `tdns-kdc serve` does with a packet
// from anyone — CHUNK queries (PROTOCOL §2.6–§2.7), enrollment UPDATEs (§11.4–§11.5) and
// confirmation NOTIFYs with their status-report JSON (§10.6) — through the public
// `KDCService.handle(request:peerHost:transport:)`, the function the socket layer calls.

// MARK: - the KDC the harnesses talk to

/// One KDC state directory per process (the harness's setup), as small as it can be: control
/// zone `kdc.example.`, the clock fixed at 2026-01-01T00:00:00Z, fixed keys (the vector keys of
/// `FuzzKeys` for HPKE, JOSE and ES256, a fixed Ed25519 SIG(0) key), one zone with one imported
/// key, and two nodes:
///
/// - `krs1.example.` (HPKE), enrolled at setup through a real enrollment UPDATE (so it has a
///   SIG(0) key and announced `["jws-es256", "sig0"]`), notify address 127.0.0.1:5300, with
///   three distributions: a ping `pending`, a chunked roll_key `notified`, a ping `confirmed`;
/// - `krs2.example.`, with an activated, unused token: the node the enrollment seeds enroll.
///
/// Everything is deterministic (fixed clock → fixed distribution IDs), so committed seeds keep
/// reaching the same code. A request that changes the state is undone after each input
/// (`kdc.json` put back), so no run depends on an earlier one. The directory (in /dev/shm when
/// there is one) is removed at exit.
enum KDCFuzzState {
    static let controlZone = "kdc.example."
    static let now: Int64 = 1_767_225_600
    static let enrolledNode = "krs1.example."
    static let enrollingNode = "krs2.example."
    static let nodeNotify = "127.0.0.1:5300"
    static let keyZone = "example.com."
    /// Not the node's notify address: only a SIG(0) identifies a confirmation from here.
    static let strangerHost = "192.0.2.1"
    static let nodeHost = "127.0.0.1"

    static let token1 = tokenHex("enrolled")
    static let token2 = tokenHex("enrolling")

    struct Environment: Sendable {
        let kdc: KDC
        let service: KDCService
        let stateDirectory: String
        let zone: DNSName
        let chunkType: RRType
        /// `kdc.json` as setup left it, and the state it holds.
        let pristine: [UInt8]
        let pristineState: KDCState
        /// krs1's distributions: ping (pending), roll_key in chunks (notified), ping (confirmed).
        let pingID: String
        let rollID: String
        let confirmedID: String
        let keyTag: UInt16
        let node1SIG0: DNSSECPrivateKey
    }

    static let environment: Result<Environment, TDNSError> = Result { () throws(TDNSError) -> Environment in try setUp() }

    /// One input at a time: the replay test runs targets in parallel, and each input changes
    /// and restores the one state directory (libFuzzer itself is single-threaded).
    private static let serial = Mutex<Void>(())

    static func exclusive(_ body: (Environment) throws(InvariantViolation) -> Void) throws(InvariantViolation) {
        let env = try get()
        let outcome: Result<Void, InvariantViolation> = serial.withLock { _ in
            do throws(InvariantViolation) {
                try body(env)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try outcome.get()
    }

    static func get() throws(InvariantViolation) -> Environment {
        switch environment {
        case .success(let e): return e
        case .failure(let e): throw InvariantViolation(message: "KDC harness environment: \(e.code): \(e.reason)")
        }
    }

    // MARK: fixed keys

    /// 64 hex characters, as `enroll generate` makes tokens.
    static func tokenHex(_ label: String) -> String {
        Hex.encode(Digests.sha256(Array("tdns-fuzz kdc token \(label)".utf8)))
    }

    static func secret(_ label: String) -> [UInt8] {
        Digests.sha256(Array("tdns-fuzz kdc key \(label)".utf8))
    }

    static func ed25519(_ label: String) throws(TDNSError) -> DNSSECPrivateKey {
        let prefix: [UInt8] = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]
        return try DNSSECPrivateKey(pkcs8DER: prefix + secret(label), algorithm: .ed25519)
    }

    static func p256(_ label: String) throws(TDNSError) -> DNSSECPrivateKey {
        let prefix: [UInt8] = [
            0x30, 0x41, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86,
            0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x27, 0x30, 0x25, 0x02, 0x01, 0x01, 0x04, 0x20,
        ]
        return try DNSSECPrivateKey(pkcs8DER: prefix + secret(label), algorithm: .ecdsap256sha256)
    }

    static func nodeHPKE(_ label: String) throws(TDNSError) -> HPKEPrivateKey {
        try HPKEPrivateKey(rawRepresentation: secret("hpke \(label)"))
    }

    static func kdcSIG0() throws(TDNSError) -> DNSSECPrivateKey { try ed25519("kdc sig0") }
    static func nodeSIG0(_ node: String) throws(TDNSError) -> DNSSECPrivateKey { try ed25519("sig0 \(node)") }

    // MARK: requests as a node makes them

    /// The enrollment request JSON of PROTOCOL §11.3 (plus the contract's `capabilities`).
    static func enrollmentRequest(node: String, token: String, hpke: HPKEPrivateKey?, jose: JOSEPublicKey?, notify: String?,
                                  sig0: DNSSECPrivateKey, timestamp: Int64) throws(TDNSError) -> [UInt8] {
        var members: [(String, JSONValue)] = [("auth_token", .string(token)),
                                              ("capabilities", .array([.string("jws-es256"), .string("sig0")]))]
        if let hpke { members.append(("hpke_pubkey", .string(hpke.publicKey.hex))) }
        if let jose { members.append(("jose_pubkey", .string(jose.jwkJSON()))) }
        if let notify { members.append(("notify_address", .string(notify))) }
        members.append(("sig0_pubkey", .string(KEYRecord(algorithm: sig0.algorithm.rawValue, publicKey: sig0.dnskeyPublicKey)
            .presentationLine(owner: try DNSName(node), ttl: 3600))))
        members.append(("timestamp", .string(RFC3339.format(timestamp))))
        return JSONValue.object(members).serialized()
    }

    /// The SIG(0)-signed enrollment UPDATE carrying `ciphertext`.
    static func enrollmentUpdate(id: UInt16, ciphertext: [UInt8], sig0: DNSSECPrivateKey, chunkType: RRType) throws(TDNSError) -> [UInt8] {
        let zone = try DNSName(controlZone)
        let update = try TDNSMessages.enrollmentUpdate(
            id: id, controlZone: zone, chunk: try TDNSMessages.enrollmentChunk(ciphertext: ciphertext), chunkType: chunkType)
        return try SIG0Signatures.sign(update, with: sig0, signerName: zone, now: now)
    }

    /// A confirmation NOTIFY of krs1 for `id` with `report` as its status report, SIG(0)-signed.
    static func confirmation(id: UInt16, distributionID: String, type: ChunkOption.ContentType, report: [UInt8],
                             sig0: DNSSECPrivateKey?) throws(TDNSError) -> [UInt8] {
        let notify = try TDNSMessages.notify(
            id: id, distributionID: try DistributionID(validating: distributionID), controlZone: try DNSName(controlZone), chunkType: .chunk,
            chunkOption: ChunkOption(contentType: type, content: report))
        guard let sig0 else { return try notify.serialize() }
        return try SIG0Signatures.sign(notify, with: sig0, signerName: try DNSName(enrolledNode), now: now)
    }

    // MARK: setup

    private static func makeDirectory() throws(TDNSError) -> String {
        for base in ["/dev/shm", "/tmp"] {
            var template = Array("\(base)/tdns-fuzz-kdc-XXXXXX".utf8CString)
            let made = template.withUnsafeMutableBufferPointer { buf in buf.baseAddress.flatMap { mkdtemp($0) } }
            if made != nil {
                let path = template.withUnsafeBufferPointer { buf in buf.baseAddress.map { String(cString: $0) } } ?? ""
                removeAtExit.withLock { $0 = path }
                atexit { KDCFuzzState.removeDirectory() }
                return path
            }
        }
        throw .storage("cannot create a KDC state directory in /dev/shm or /tmp")
    }

    private static let removeAtExit = Mutex<String?>(nil)

    static func removeDirectory() {
        guard let path = removeAtExit.withLock({ $0 }), path.contains("tdns-fuzz-kdc-") else { return }
        try? FileManager.default.removeItem(atPath: path)
    }

    private static func setUp() throws(TDNSError) -> Environment {
        let base = try makeDirectory()
        let kdc = KDC(stateDirectory: "\(base)/kdc", clock: .fixed(now), log: .silent)
        _ = try kdc.initialize(controlZone: controlZone, listen: "127.0.0.1:5399", chunkType: RRType.chunk.rawValue,
                               distributionTTL: 300, enrollmentWindow: 300, chunkSize: 60000, retireTime: nil)
        // Fixed long-term keys instead of the generated ones (files as `init` writes them).
        let keys = try FuzzState.keys()
        try kdc.store.writeSecret("keys/kdc.hpke.privatekey", Array("# tdns-kdc HPKE (X25519) private key\n\(FuzzKeys.hpkeRecipientHex)\n".utf8))
        try kdc.store.writeSecret("keys/kdc.jose.privatekey", Array((FuzzKeys.joseRecipientJWK + "\n").utf8))
        try kdc.store.writeSecret("keys/kdc.signing.privatekey", Array((keys.kdcSigner.jwkJSON() + "\n").utf8))
        try kdc.store.writeSecret("keys/kdc.sig0.privatekey", try kdcSIG0().pkcs8PEM())

        // One zone, one imported P-256 ZSK (fixed, so its tag is fixed).
        _ = try kdc.addZone(keyZone)
        let zsk = try p256("zsk")
        let keyFile = "\(base)/Kexample.com.private"
        try POSIXFile.writeAtomically(keyFile, bytes: zsk.bindPrivateKeyFile(created: now, publish: now, activate: now), mode: 0o600)
        _ = try kdc.importKey(zone: keyZone, file: keyFile, keyType: "zsk")
        let keyTag = zsk.keyTag(flags: 256)

        // Two enrollments with fixed tokens (the generated ones replaced by their hashes).
        for (node, token, notify) in [(enrolledNode, token1, Optional(nodeNotify)), (enrollingNode, token2, nil)] {
            _ = try kdc.generateEnrollment(nodeID: node, out: "\(base)/\(node)pkg", crypto: nil, notify: notify)
            try kdc.store.update { (state) throws(TDNSError) in
                guard let i = state.enrollments.lastIndex(where: { $0.nodeID == node && $0.usedAt == nil }) else {
                    throw .internalFailure("no enrollment for \(node)")
                }
                state.enrollments[i].tokenHash = Hex.encode(Digests.sha256(Array(token.utf8)))
            }
            _ = try kdc.activateEnrollment(nodeID: node, window: nil)
        }

        let service = try KDCService(kdc: kdc)
        let zone = try DNSName(controlZone)

        // krs1 enrolls the way a KRS does: HPKE to the KDC, SIG(0) by its own key.
        let node1SIG0 = try nodeSIG0(enrolledNode)
        let request = try enrollmentRequest(
            node: enrolledNode, token: token1, hpke: try nodeHPKE(enrolledNode), jose: nil, notify: nodeNotify,
            sig0: node1SIG0, timestamp: now)
        let update = try enrollmentUpdate(
            id: 0x0E01, ciphertext: try HPKECipher.seal(request, to: keys.hpkeRecipient.publicKey), sig0: node1SIG0, chunkType: .chunk)
        guard let answer = service.handle(request: update, peerHost: nodeHost, transport: .udp),
              let reply = try? DNSMessage(wireEncoded: answer), reply.rcode == .noError
        else { throw .internalFailure("setup: the enrollment of \(enrolledNode) was not accepted") }

        // Its distributions; the first ID is the clock's time in hex, the others follow.
        func distribute(_ op: KDCOperation, key: UInt16?, chunkSize: Int?) throws(TDNSError) -> String {
            let report = try kdc.distribute(target: .node(enrolledNode), zone: key == nil ? nil : keyZone, keyTag: key,
                                            operation: op, chunkSize: chunkSize)
            guard let id = report.json["distributions"]?.arrayValue?.first?["distribution_id"]?.stringValue else {
                throw .internalFailure("setup: distribute made no distribution")
            }
            return id
        }
        let pingID = try distribute(.ping, key: nil, chunkSize: nil)
        let rollID = try distribute(.rollKey, key: keyTag, chunkSize: 256)
        let confirmedID = try distribute(.ping, key: nil, chunkSize: nil)
        try kdc.store.update { (state) throws(TDNSError) in
            for i in state.distributions.indices {
                state.distributions[i].notifyAttempts = 1
                state.distributions[i].lastNotifyAt = now
                // The ping stays pending: a CHUNK query must never move it (issue 10: a query
                // before the first NOTIFY suppressed the NOTIFY for good).
                if state.distributions[i].id == pingID { continue }
                state.distributions[i].notifiedAt = now
                state.distributions[i].state = state.distributions[i].id == confirmedID ? .confirmed : .notified
                if state.distributions[i].id == confirmedID {
                    state.distributions[i].confirmedAt = now
                    state.distributions[i].confirmedBy = "sig0"
                }
            }
        }
        let pristine = try POSIXFile.read(kdc.store.statePath, limit: KDCStore.maxStateSize)
        return Environment(
            kdc: kdc, service: service, stateDirectory: kdc.store.directory, zone: zone, chunkType: .chunk,
            pristine: pristine, pristineState: service.currentState(), pingID: pingID, rollID: rollID,
            confirmedID: confirmedID, keyTag: keyTag, node1SIG0: node1SIG0)
    }

    // MARK: per input

    /// `kdc.json`'s identity (mtime, inode): every write replaces the file.
    static func fileID(_ env: Environment) -> [Int] {
        guard let (s, ns) = POSIXFile.modificationTime(env.kdc.store.statePath) else { return [] }
        return [s, ns, POSIXFile.inode(env.kdc.store.statePath)]
    }

    /// Puts the setup's state back when a request changed it.
    static func restore(_ env: Environment, changed: Bool) throws(InvariantViolation) {
        guard changed else { return }
        _ = try mustSucceed("restoring kdc.json") { () throws(TDNSError) in
            try POSIXFile.writeAtomically(env.kdc.store.statePath, bytes: env.pristine, mode: 0o600)
        }
        try invariant(env.service.currentState() == env.pristineState, "the service did not reload the restored kdc.json")
    }
}

// MARK: - what every answer of the KDC must be

enum KDCAnswer {
    /// RCODEs the KDC answers with (PROTOCOL §2.7, §10.6, §11.5).
    static let rcodes: Set<RCode> = [.noError, .formErr, .servFail, .nxDomain, .notImp, .refused, .notAuth]

    /// The answer to `data` over `transport`: nil exactly for a non-request; otherwise a DNS
    /// message that answers the request (ID, QR, opcode, at most its first question), with a
    /// known RCODE, within the client's UDP size. Returns the parsed request and answer.
    static func check(_ data: [UInt8], _ answer: [UInt8]?, transport: KDCService.Transport) throws(InvariantViolation)
        -> (request: DNSMessage, answer: DNSMessage)?
    {
        guard data.count >= DNSMessage.headerSize else {
            try invariant(answer == nil, "answered \(data.count) bytes (no header)")
            return nil
        }
        guard let request = try? DNSMessage(wireEncoded: data) else {
            if data[2] & 0x80 != 0 {
                try invariant(answer == nil, "answered an unparseable response")
                return nil
            }
            guard let answer else { throw InvariantViolation(message: "an unparseable request got no FORMERR") }
            try invariant(answer.count == DNSMessage.headerSize && answer[0] == data[0] && answer[1] == data[1]
                          && answer[2] & 0x80 != 0 && answer[3] & 0x0F == RCode.formErr.headerBits & 0x0F,
                          "the answer to an unparseable request is not a bare FORMERR header: \(hexPrefix(answer))")
            return nil
        }
        guard !request.flags.qr else {
            try invariant(answer == nil, "answered a response")
            return nil
        }
        guard let answer else { throw InvariantViolation(message: "a \(request.opcode) request got no answer") }
        let reply = try mustSucceed("parse of the KDC's answer \(hexPrefix(answer))") { () throws(TDNSError) in
            try DNSMessage(wireEncoded: answer)
        }
        FuzzDebug.note("KDCService.handle (\(transport)): \(request.opcode) → \(reply.rcode), \(reply.answers.count) answers")
        try invariant(reply.flags.qr && reply.id == request.id && reply.opcode == request.opcode,
                      "the answer does not answer the request (QR, ID or opcode)")
        try invariant(rcodes.contains(reply.rcode), "answer RCODE \(reply.rcode)")
        try invariant(reply.questions.count <= 1 && zip(reply.questions, request.questions).allSatisfy { identical($0, $1) },
                      "the answer's question is not the request's first")
        if transport == .udp {
            let limit = max(512, Int(request.edns?.udpPayloadSize ?? 512))
            try invariant(answer.count <= limit, "UDP answer of \(answer.count) bytes exceeds the client's \(limit)")
        }
        return (request, reply)
    }
}

// MARK: - CHUNK queries

/// `kdc-chunk-query`: a DNS message (normally a CHUNK query) to the KDC.
///
/// - `TDNSMessages.parseChunkQueryName` on the question's name (or on the input as name text):
///   only `.malformed`; what parses rebuilds with `chunkQueryName` to a name that parses to the
///   same node, distribution and index.
/// - `KDCService.handle` over UDP and TCP from a stranger: answers as ``KDCAnswer/check``; a
///   CHUNK answered is exactly the stored record of that index of a distribution of that node;
///   a QUERY never changes the KDC's state (contract §3: CHUNK queries never change a
///   distribution's state).
enum KDCChunkQueryHarness {
    static func run(_ data: [UInt8]) throws(InvariantViolation) {
        try KDCFuzzState.exclusive { (env) throws(InvariantViolation) in try run(data, env) }
    }

    static func run(_ data: [UInt8], _ env: KDCFuzzState.Environment) throws(InvariantViolation) {
        if let m = try? DNSMessage(wireEncoded: data) {
            for q in m.questions { try checkName(q.name, env) }
        } else if data.count <= 1024, let text = String(validating: data, as: UTF8.self), let name = try? DNSName(text) {
            try checkName(name, env)
        }
        for transport in [KDCService.Transport.udp, .tcp] {
            let before = KDCFuzzState.fileID(env)
            let answer = env.service.handle(request: data, peerHost: KDCFuzzState.strangerHost, transport: transport)
            let changed = KDCFuzzState.fileID(env) != before
            if let exchange = try KDCAnswer.check(data, answer, transport: transport), exchange.request.opcode == .query {
                try invariant(!changed, "a QUERY changed the KDC's state")
                try checkServed(exchange.request, exchange.answer, env)
            }
            try KDCFuzzState.restore(env, changed: changed)
        }
    }

    static func checkName(_ name: DNSName, _ env: KDCFuzzState.Environment) throws(InvariantViolation) {
        let parsed: TDNSMessages.ChunkQueryName
        do {
            parsed = try TDNSMessages.parseChunkQueryName(name, controlZone: env.zone)
        } catch {
            try expectRejection(error, [.malformed], "parseChunkQueryName")
            return
        }
        try invariant(DistributionID(parsed.distributionID.text) == parsed.distributionID, "parsed distribution ID \(parsed.distributionID) is not valid")
        let rebuilt = try mustSucceed("chunkQueryName of a parsed name") { () throws(TDNSError) in
            try TDNSMessages.chunkQueryName(sequence: parsed.index ?? 0, nodeID: parsed.nodeID,
                                            distributionID: parsed.distributionID, controlZone: env.zone)
        }
        let again = try mustSucceed("parseChunkQueryName of \(rebuilt)") { () throws(TDNSError) in
            try TDNSMessages.parseChunkQueryName(rebuilt, controlZone: env.zone)
        }
        try invariant(again.nodeID == parsed.nodeID && again.distributionID == parsed.distributionID
                      && (again.index ?? 0) == (parsed.index ?? 0), "CHUNK query name round trip: \(name) → \(rebuilt)")
    }

    /// A CHUNK in the answer is the stored record of a distribution of the node in the name.
    static func checkServed(_ request: DNSMessage, _ reply: DNSMessage, _ env: KDCFuzzState.Environment) throws(InvariantViolation) {
        guard reply.rcode == .noError, !reply.answers.isEmpty else { return }
        guard let q = request.questions.first, q.type == env.chunkType,
              let parsed = try? TDNSMessages.parseChunkQueryName(q.name, controlZone: env.zone)
        else { throw InvariantViolation(message: "records answered to a query that is not a CHUNK query") }
        try invariant(reply.answers.count == 1 && reply.answers[0].type == env.chunkType && reply.answers[0].rrClass == .in
                      && reply.answers[0].name == q.name, "a CHUNK answer is not one CHUNK IN record owned by the QNAME")
        guard let dist = env.pristineState.distribution(parsed.distributionID.text) else {
            throw InvariantViolation(message: "a CHUNK served for unknown distribution \(parsed.distributionID)")
        }
        try invariant(dist.nodeID == parsed.nodeID.canonical.description, "distribution \(dist.id) served to another node's name")
        let records = try mustSucceed("stored records of \(dist.id)") { () throws(TDNSError) in
            try env.kdc.store.readRecords(dist.recordsFile)
        }
        let index = Int(parsed.index ?? 0)
        try invariant(index < records.count && records[index] == reply.answers[0].rdata, "CHUNK \(index) of \(dist.id) is not the stored record")
    }
}

// MARK: - enrollment UPDATEs

/// `kdc-enroll-update`: a DNS message (normally an enrollment UPDATE) to the KDC.
///
/// - `TDNSMessages.parseEnrollmentUpdate`: only `.malformed`.
/// - `KDCService.handle` over UDP: answers as ``KDCAnswer/check``; an UPDATE that is refused
///   (any RCODE but NOERROR) changes nothing; an accepted one used exactly one token, registered
///   that token's node with a SIG(0) key, and carries an enrollment confirmation (CHUNK option
///   content type 2).
enum KDCEnrollHarness {
    static func run(_ data: [UInt8]) throws(InvariantViolation) {
        try KDCFuzzState.exclusive { (env) throws(InvariantViolation) in try run(data, env) }
    }

    static func run(_ data: [UInt8], _ env: KDCFuzzState.Environment) throws(InvariantViolation) {
        if let m = try? DNSMessage(wireEncoded: data) {
            do {
                _ = try TDNSMessages.parseEnrollmentUpdate(m, controlZone: env.zone, acceptedTypes: [.chunk, .chunkLegacy])
            } catch {
                try expectRejection(error, [.malformed], "parseEnrollmentUpdate")
            }
        }
        let before = KDCFuzzState.fileID(env)
        let answer = env.service.handle(request: data, peerHost: KDCFuzzState.strangerHost, transport: .udp)
        let changed = KDCFuzzState.fileID(env) != before
        if let exchange = try KDCAnswer.check(data, answer, transport: .udp) {
            let (request, reply) = (exchange.request, exchange.answer)
            if reply.rcode != .noError || request.opcode != .update {
                try invariant(!changed, "a refused \(request.opcode) (\(reply.rcode)) changed the KDC's state")
            } else {
                try checkEnrolled(reply, env)
            }
        }
        try KDCFuzzState.restore(env, changed: changed)
    }

    static func checkEnrolled(_ reply: DNSMessage, _ env: KDCFuzzState.Environment) throws(InvariantViolation) {
        let state = env.service.currentState()
        let used = state.enrollments.filter { e in
            e.usedAt != nil && env.pristineState.enrollments.contains { $0.tokenHash == e.tokenHash && $0.usedAt == nil }
        }
        try invariant(used.count == 1, "an accepted enrollment used \(used.count) tokens")
        try invariant(state.node(used[0].nodeID)?.sig0PublicKey != nil, "the enrolled node \(used[0].nodeID) has no SIG(0) key")
        let option = (try? reply.edns?.chunkOption()) ?? nil
        try invariant(option?.contentType == .enrollmentConfirmation, "the enrollment answer carries no enrollment confirmation")
    }
}

// MARK: - confirmation NOTIFYs

/// `kdc-confirmation`: the input twice.
///
/// 1. As a DNS message (normally a confirmation NOTIFY) from the node's notify address:
///    answers as ``KDCAnswer/check``; a NOTIFY that is not answered NOERROR changes nothing,
///    and one that changes the state only moves the distribution it names to confirmed or
///    failed.
/// 2. As the JSON of a key status report, in a confirmation of krs1's chunked roll_key signed
///    with krs1's SIG(0) key and sent from a stranger's address (so only the signature can
///    identify it): NOERROR or FORMERR, never REFUSED; text that is not a JSON object is
///    FORMERR; FORMERR changes nothing; NOERROR leaves the distribution confirmed (by sig0)
///    or failed with the distribution's own key in `failed_keys` and a reason.
enum KDCConfirmationHarness {
    static func run(_ data: [UInt8]) throws(InvariantViolation) {
        try KDCFuzzState.exclusive { (env) throws(InvariantViolation) in
            try asMessage(data, env)
            try asReport(data, env)
        }
    }

    static func asMessage(_ data: [UInt8], _ env: KDCFuzzState.Environment) throws(InvariantViolation) {
        let before = KDCFuzzState.fileID(env)
        let answer = env.service.handle(request: data, peerHost: KDCFuzzState.nodeHost, transport: .udp)
        let changed = KDCFuzzState.fileID(env) != before
        if let exchange = try KDCAnswer.check(data, answer, transport: .udp) {
            let (request, reply) = (exchange.request, exchange.answer)
            if reply.rcode != .noError || request.opcode != .notify {
                try invariant(!changed, "a \(request.opcode) answered \(reply.rcode) changed the KDC's state")
            } else if changed {
                let id = request.questions.first.flatMap { try? TDNSMessages.distributionID(fromNotifyName: $0.name, controlZone: env.zone).text }
                let state = env.service.currentState()
                for d in state.distributions where env.pristineState.distribution(d.id) != d {
                    try invariant(d.id == id, "a confirmation of \(id ?? "nothing") changed distribution \(d.id)")
                    try invariant(d.state == .confirmed || d.state == .failed, "a confirmation left \(d.id) \(d.state.rawValue)")
                }
            }
        }
        try KDCFuzzState.restore(env, changed: changed)
    }

    static func asReport(_ data: [UInt8], _ env: KDCFuzzState.Environment) throws(InvariantViolation) {
        guard data.count <= 60000 else { return }
        let wire = try mustSucceed("a signed confirmation carrying the input") { () throws(TDNSError) in
            try KDCFuzzState.confirmation(id: 0x5A5A, distributionID: env.rollID, type: .keyStatusReport, report: data,
                                          sig0: env.node1SIG0)
        }
        let before = KDCFuzzState.fileID(env)
        let answer = env.service.handle(request: wire, peerHost: KDCFuzzState.strangerHost, transport: .udp)
        let changed = KDCFuzzState.fileID(env) != before
        guard let reply = try KDCAnswer.check(wire, answer, transport: .udp)?.answer else {
            throw InvariantViolation(message: "the signed confirmation was not handled as a request")
        }
        try invariant(reply.rcode == .noError || reply.rcode == .formErr, "a SIG(0)-signed confirmation answered \(reply.rcode)")
        var isObject = false
        if let json = try? JSONValue.parse(data, maxDepth: 64, maxSize: 65536), case .object = json { isObject = true }
        if !isObject { try invariant(reply.rcode == .formErr, "a report that is not a JSON object was accepted") }
        if reply.rcode == .formErr {
            try invariant(!changed, "a confirmation answered FORMERR changed the KDC's state")
        } else {
            let d = env.service.currentState().distribution(env.rollID)
            switch d?.state {
            case .confirmed?:
                try invariant(d?.confirmedBy == "sig0", "confirmed, but not identified by SIG(0): \(d?.confirmedBy ?? "-")")
            case .failed?:
                let keys = d?.failedKeys ?? []
                try invariant(!keys.isEmpty && !(d?.reason ?? "").isEmpty, "failed without failed_keys or a reason")
                try invariant(keys.allSatisfy { $0.zoneName.lowercased() == KDCFuzzState.keyZone && $0.keyID == String(env.keyTag) },
                              "failed_keys holds keys that are not the distribution's")
            default:
                throw InvariantViolation(message: "an accepted confirmation left \(env.rollID) \(d?.state.rawValue ?? "missing")")
            }
        }
        try KDCFuzzState.restore(env, changed: changed)
    }
}

// MARK: - seeds

/// The seed inputs of the three KDC targets, made against ``KDCFuzzState``'s fixed keys, clock
/// and distribution IDs. The encrypted enrollment requests use a fresh HPKE ephemeral key (and
/// the JWE a fresh content key) each time they are made: the only seeds whose bytes change when
/// `--seeds` is run again; what they reach does not.
enum KDCSeeds {
    static func make() throws -> [FuzzSeeds.Seed] {
        let env: KDCFuzzState.Environment
        switch KDCFuzzState.environment {
        case .success(let e): env = e
        case .failure(let e): throw e
        }
        var out: [FuzzSeeds.Seed] = []
        func add(_ target: FuzzTarget, _ name: String, _ bytes: [UInt8]) { out.append(FuzzSeeds.Seed(target: target, name: name, bytes: bytes)) }
        let zone = env.zone
        let node = try DNSName(KDCFuzzState.enrolledNode)

        // CHUNK queries: manifest and data chunks of each distribution, both types, odd names.
        var qid: UInt16 = 0x7000
        func query(_ name: DNSName, _ type: RRType, edns: Bool = true) throws -> [UInt8] {
            qid &+= 1
            var q = TDNSMessages.chunkQuery(id: qid, name: name, chunkType: type)
            if !edns { q.edns = nil }
            return try q.serialize()
        }
        for (label, id) in [("ping", env.pingID), ("roll", env.rollID), ("confirmed", env.confirmedID)] {
            add(.kdcChunkQuery, "manifest-\(label)", try query(try TDNSMessages.chunkQueryName(sequence: 0, nodeID: node, distributionID: try DistributionID(validating: id), controlZone: zone), .chunk))
        }
        for seq in [1, 2, 5] {
            add(.kdcChunkQuery, "data-\(seq)", try query(try TDNSMessages.chunkQueryName(sequence: UInt16(seq), nodeID: node, distributionID: try DistributionID(validating: env.rollID), controlZone: zone), .chunk))
        }
        add(.kdcChunkQuery, "data-out-of-range", try query(try TDNSMessages.chunkQueryName(sequence: 999, nodeID: node, distributionID: try DistributionID(validating: env.rollID), controlZone: zone), .chunk))
        add(.kdcChunkQuery, "data-no-edns", try query(try TDNSMessages.chunkQueryName(sequence: 1, nodeID: node, distributionID: try DistributionID(validating: env.rollID), controlZone: zone), .chunk, edns: false))
        add(.kdcChunkQuery, "legacy-type", try query(try TDNSMessages.chunkQueryName(sequence: 0, nodeID: node, distributionID: try DistributionID(validating: env.pingID), controlZone: zone), .chunkLegacy))
        add(.kdcChunkQuery, "other-node", try query(try TDNSMessages.chunkQueryName(sequence: 0, nodeID: try DNSName(KDCFuzzState.enrollingNode), distributionID: try DistributionID(validating: env.pingID), controlZone: zone), .chunk))
        add(.kdcChunkQuery, "unknown-node", try query(try TDNSMessages.chunkQueryName(sequence: 0, nodeID: try DNSName("nobody.example."), distributionID: try DistributionID(validating: env.pingID), controlZone: zone), .chunk))
        add(.kdcChunkQuery, "unknown-distribution", try query(try TDNSMessages.chunkQueryName(sequence: 0, nodeID: node, distributionID: try DistributionID(validating: "0badc0de"), controlZone: zone), .chunk))
        add(.kdcChunkQuery, "numeric-node", try query(try TDNSMessages.chunkQueryName(sequence: 3, nodeID: try DNSName("7.example."), distributionID: try DistributionID(validating: env.rollID), controlZone: zone), .chunk))
        add(.kdcChunkQuery, "zero-padded-index", try query(try DNSName("0001.krs1.example.\(env.rollID).\(KDCFuzzState.controlZone)"), .chunk))
        add(.kdcChunkQuery, "outside-zone", try query(try DNSName("krs1.example.\(env.pingID).other.example."), .chunk))
        add(.kdcChunkQuery, "not-chunk", try query(try DNSName("krs1.example.\(env.pingID).\(KDCFuzzState.controlZone)"), .txt))
        add(.kdcChunkQuery, "name-text", Array("3.krs1.example.\(env.rollID).\(KDCFuzzState.controlZone)".utf8))
        add(.kdcChunkQuery, "mixed-case", try query(try DNSName("KRS1.Example.\(env.rollID.uppercased()).KDC.example."), .chunk))

        // Enrollment UPDATEs: krs2 with token 2 (HPKE, JOSE, both CHUNK types), and refusals.
        let keys = try FuzzState.keys()
        let sig0 = try KDCFuzzState.nodeSIG0(KDCFuzzState.enrollingNode)
        let hpke = try KDCFuzzState.nodeHPKE(KDCFuzzState.enrollingNode)
        func request(token: String = KDCFuzzState.token2, hpke h: HPKEPrivateKey? = nil, jose: JOSEPublicKey? = nil,
                     timestamp: Int64 = KDCFuzzState.now) throws -> [UInt8] {
            try KDCFuzzState.enrollmentRequest(node: KDCFuzzState.enrollingNode, token: token, hpke: h, jose: jose,
                                              notify: "127.0.0.2:5300", sig0: sig0, timestamp: timestamp)
        }
        let sealed = try HPKECipher.seal(try request(hpke: hpke), to: keys.hpkeRecipient.publicKey)
        add(.kdcEnrollUpdate, "hpke", try KDCFuzzState.enrollmentUpdate(id: 0x0E02, ciphertext: sealed, sig0: sig0, chunkType: .chunk))
        add(.kdcEnrollUpdate, "hpke-65015", try KDCFuzzState.enrollmentUpdate(id: 0x0E03, ciphertext: sealed, sig0: sig0, chunkType: .chunkLegacy))
        let jwe = try JWE.encrypt(try request(jose: keys.joseRecipient.publicKey), to: keys.joseRecipient.publicKey)
        add(.kdcEnrollUpdate, "jose", try KDCFuzzState.enrollmentUpdate(id: 0x0E04, ciphertext: jwe, sig0: sig0, chunkType: .chunk))
        add(.kdcEnrollUpdate, "used-token", try KDCFuzzState.enrollmentUpdate(
            id: 0x0E05, ciphertext: try HPKECipher.seal(try request(token: KDCFuzzState.token1, hpke: hpke), to: keys.hpkeRecipient.publicKey),
            sig0: sig0, chunkType: .chunk))
        add(.kdcEnrollUpdate, "stale-timestamp", try KDCFuzzState.enrollmentUpdate(
            id: 0x0E06, ciphertext: try HPKECipher.seal(try request(hpke: hpke, timestamp: KDCFuzzState.now - 3600), to: keys.hpkeRecipient.publicKey),
            sig0: sig0, chunkType: .chunk))
        add(.kdcEnrollUpdate, "plaintext-json", try KDCFuzzState.enrollmentUpdate(id: 0x0E07, ciphertext: try request(hpke: hpke), sig0: sig0, chunkType: .chunk))
        let unsigned = try TDNSMessages.enrollmentUpdate(
            id: 0x0E08, controlZone: zone, chunk: try TDNSMessages.enrollmentChunk(ciphertext: sealed), chunkType: .chunk)
        add(.kdcEnrollUpdate, "unsigned", try unsigned.serialize())
        var wrongZone = unsigned
        wrongZone.questions = [Question(name: try DNSName("example.com."), type: .soa, rrClass: .in)]
        add(.kdcEnrollUpdate, "wrong-zone", try wrongZone.serialize())
        var wrongType = unsigned
        wrongType.updates = wrongType.updates.map { rr in ResourceRecord(name: rr.name, type: .txt, rrClass: rr.rrClass, ttl: rr.ttl, rdata: rr.rdata) }
        add(.kdcEnrollUpdate, "wrong-type", try wrongType.serialize())

        // Confirmations: as the node sends them (signed, from its address), unsigned, and reports.
        let ok = Array(#"{"successful_keys":[{"zone_name":"example.com.","key_id":"\#(env.keyTag)"}]}"#.utf8)
        let failed = Array(#"{"failed_keys":[{"zone_name":"example.com.","key_id":"\#(env.keyTag)","error":"storage: No space left on device"}]}"#.utf8)
        let foreign = Array(#"{"successful_keys":[],"failed_keys":[{"zone_name":"other.example.","key_id":"1","error":"x"}]}"#.utf8)
        add(.kdcConfirmation, "signed-ok", try KDCFuzzState.confirmation(id: 0x0C01, distributionID: env.rollID, type: .keyStatusReport, report: ok, sig0: env.node1SIG0))
        add(.kdcConfirmation, "signed-failed", try KDCFuzzState.confirmation(id: 0x0C02, distributionID: env.rollID, type: .keyStatusReport, report: failed, sig0: env.node1SIG0))
        add(.kdcConfirmation, "signed-ping", try KDCFuzzState.confirmation(id: 0x0C03, distributionID: env.pingID, type: .keyStatusReport,
                                                                          report: Array(#"{"successful_keys":[{"zone_name":"ping","key_id":"op-0"}]}"#.utf8), sig0: env.node1SIG0))
        add(.kdcConfirmation, "signed-components", try KDCFuzzState.confirmation(id: 0x0C04, distributionID: env.pingID, type: .componentStatusReport,
                                                                                report: Array(#"{"successful_components":[{"component_id":"a"}]}"#.utf8), sig0: env.node1SIG0))
        add(.kdcConfirmation, "unsigned-ok", try KDCFuzzState.confirmation(id: 0x0C05, distributionID: env.rollID, type: .keyStatusReport, report: ok, sig0: nil))
        add(.kdcConfirmation, "signed-confirmed", try KDCFuzzState.confirmation(id: 0x0C06, distributionID: env.confirmedID, type: .keyStatusReport, report: ok, sig0: env.node1SIG0))
        add(.kdcConfirmation, "signed-unknown", try KDCFuzzState.confirmation(id: 0x0C07, distributionID: "0badc0de", type: .keyStatusReport, report: ok, sig0: env.node1SIG0))
        let bare = try TDNSMessages.notify(id: 0x0C08, distributionID: try DistributionID(validating: env.rollID), controlZone: zone, chunkType: .chunk)
        add(.kdcConfirmation, "bare-notify", try bare.serialize())
        add(.kdcConfirmation, "report-ok", ok)
        add(.kdcConfirmation, "report-failed", failed)
        add(.kdcConfirmation, "report-foreign", foreign)
        add(.kdcConfirmation, "report-empty", Array("{}".utf8))
        add(.kdcConfirmation, "report-bad-types", Array(#"{"failed_keys":{"zone_name":1},"successful_keys":"no"}"#.utf8))
        add(.kdcConfirmation, "report-deep", Array(#"{"failed_keys":[{"zone_name":"example.com.","key_id":"1","error":{"a":[[[1]]]}}]}"#.utf8))
        return out
    }
}
