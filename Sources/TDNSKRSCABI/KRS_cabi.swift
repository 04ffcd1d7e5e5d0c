import CTDNSKRS
import Synchronization
import TDNSCore
import TDNSKRS

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Contexts

/// What a `krs_context_t *` stands for: the receiver, the host's callbacks and the
/// context's last error text.
final class KRSContext: Sendable {
    let node: KRSNode
    let host: HostHooks
    let keyChanges: KeyChangeCounts
    let lastError = ErrorText()

    init(node: KRSNode, host: HostHooks, keyChanges: KeyChangeCounts) {
        self.node = node
        self.host = host
        self.keyChanges = keyChanges
    }

    deinit { node.stop() }

    /// Runs `body`; a thrown error becomes the context's last error and its code.
    func run(_ body: () throws(TDNSError) -> Int32) -> Int32 {
        do {
            return try body()
        } catch {
            lastError.set(error.reason)
            return error.code.krsCode
        }
    }
}

/// The host's krs_host_ops_t, copied. The C function pointers and the `user` pointer are the
/// host's to keep valid; we only call them, one call at a time per context (the lock), as
/// krs.h promises.
final class HostHooks: @unchecked Sendable {
    private let lock = Mutex<Void>(())
    // Guarded by `lock`.
    nonisolated(unsafe) private var ops: krs_host_ops_t?
    /// Lines logged before the host installed its callbacks — krs_init's own (a directory
    /// created or tightened, contract §4) — handed to the first log callback installed.
    nonisolated(unsafe) private var early: [(KRSLogLevel, String)] = []
    nonisolated(unsafe) private var delivered = false
    private static let earlyKept = 32

    func set(_ new: krs_host_ops_t?) {
        lock.withLock { _ in
            ops = new
            guard !delivered, let ops = new, let log = ops.log else { return }
            delivered = true
            for (level, message) in early { message.withCString { log(ops.user, Int32(level.rawValue), $0) } }
            early = []
        }
    }

    /// The host's clock, or nil when it gave none.
    func now() -> Int64? {
        lock.withLock { _ in
            guard let ops, let clock = ops.clock else { return nil }
            return clock(ops.user)
        }
    }

    func log(_ level: KRSLogLevel, _ message: String) {
        lock.withLock { _ in
            guard let ops, let log = ops.log else {
                if !delivered && early.count < Self.earlyKept { early.append((level, message)) }
                return
            }
            message.withCString { log(ops.user, Int32(level.rawValue), $0) }
        }
    }

    /// KRS_KEY_REMOVED, KRS_KEY_INSTALLED, KRS_KEY_RETIRED of krs.h.
    static func keyChangeKind(_ kind: KeyStoreChange.Kind) -> Int32 {
        switch kind {
        case .deleted: return KRS_KEY_REMOVED
        case .installed: return KRS_KEY_INSTALLED
        case .retired: return KRS_KEY_RETIRED
        }
    }

    func keyChanged(_ change: KeyStoreChange) {
        lock.withLock { _ in
            guard let ops, let hook = ops.key_changed else { return }
            change.zone.withCString {
                hook(ops.user, $0, change.keyTag, change.algorithm ?? 0, Self.keyChangeKind(change.kind))
            }
        }
    }
}

/// Live contexts (see ``HandleTable``): a stale or foreign `krs_context_t *` is refused with
/// KRS_EINVAL, never dereferenced.
let contexts = HandleTable<KRSContext>()

/// A context's last error as a C string. The previous few texts are kept alive a little
/// longer, so a pointer another thread got from krs_last_error just before a new failure
/// does not dangle at once.
final class ErrorText: Sendable {
    private static let kept = 8
    /// Addresses of malloc'ed C strings, newest last. (Stored as integers: region-based
    /// isolation will not let raw pointers in and out of a Mutex.)
    private let texts = Mutex<[UInt]>([])

    func set(_ message: String) {
        guard let copy = strdup(message) else { return }
        let address = UInt(bitPattern: copy)
        let dropped: UInt? = texts.withLock { list in
            list.append(address)
            return list.count > Self.kept ? list.removeFirst() : nil
        }
        if let dropped { free(UnsafeMutableRawPointer(bitPattern: dropped)) }
    }

    var current: UnsafePointer<CChar>? {
        let address = texts.withLock { $0.last }
        return address.flatMap { UnsafePointer<CChar>(bitPattern: $0) }
    }

    deinit {
        let all = texts.withLock { list in
            defer { list.removeAll() }
            return list
        }
        for address in all { free(UnsafeMutableRawPointer(bitPattern: address)) }
    }
}

// MARK: - The reason of a failed krs_init, per thread

/// krs_init has no context to hang its error on, so the reason lives in thread-local storage
/// (like errno), freed by the key's destructor when the thread ends.
private let initErrorKey: pthread_key_t? = {
    var key = pthread_key_t()
    return pthread_key_create(&key, { free($0) }) == 0 ? key : nil
}()

private func setInitError(_ message: String?) {
    guard let key = initErrorKey else { return }
    free(pthread_getspecific(key))
    let copy = message.flatMap { strdup($0) }
    pthread_setspecific(key, copy.map { UnsafeRawPointer($0) })
}

// MARK: - Entry points

/// Longest `key=value` argument read from C.
private let maxArgumentLength = 65536

@c @implementation
public func krs_init(
    _ outCtx: UnsafeMutablePointer<OpaquePointer?>?, _ argc: Int32, _ argv: UnsafePointer<UnsafePointer<CChar>?>?
) -> Int32 {
    outCtx?.pointee = nil
    setInitError(nil)
    guard let outCtx else {
        setInitError("krs_init: out_ctx is NULL")
        return KRS_EINVAL
    }
    guard argc >= 0, argc <= 1024, argc == 0 || argv != nil else {
        setInitError("krs_init: argc/argv are invalid")
        return KRS_EINVAL
    }
    var arguments: [String] = []
    for i in 0..<Int(argc) {
        guard let arg = argv?[i] else {
            setInitError("krs_init: argv[\(i)] is NULL")
            return KRS_EINVAL
        }
        guard strnlen(arg, maxArgumentLength + 1) <= maxArgumentLength,
              let text = String(validatingCString: arg) else {
            setInitError("krs_init: argv[\(i)] is too long or not UTF-8")
            return KRS_EINVAL
        }
        arguments.append(text)
    }
    do {
        // Parsed once, here: keys read, names and addresses parsed (issue 12 §3).
        let settings = try KRSSettings(arguments: arguments)
        let host = HostHooks()
        let keyChanges = KeyChangeCounts()
        // Time: the host's clock when it installs one, else now= or the system clock.
        let fallback = settings.clock
        let node = try KRSNode(
            settings: settings,
            clock: WallClock { host.now() ?? fallback.now },
            log: { level, message in host.log(level, message) },
            keyChanged: { change in
                keyChanges.count(change.kind)
                host.keyChanged(change)
            })
        let context = KRSContext(node: node, host: host, keyChanges: keyChanges)
        guard let handle = contexts.addOpaque(context) else { return KRS_ERROR }
        outCtx.pointee = handle
        return KRS_OK
    } catch {
        setInitError(error.reason)
        return error.code.krsCode
    }
}

@c @implementation
public func krs_cleanup(_ ctx: OpaquePointer?) {
    contexts.remove(ctx)?.node.stop()
}

@c @implementation
public func krs_set_host_ops(_ ctx: OpaquePointer?, _ ops: UnsafePointer<krs_host_ops_t>?) -> Int32 {
    guard let context = contexts.lookup(ctx) else { return KRS_EINVAL }
    guard let ops else {
        context.host.set(nil)
        return KRS_OK
    }
    // Read version and size before the rest: a host built against another ABI may have
    // passed a smaller structure.
    let header = UnsafeRawPointer(ops)
    let version = header.loadUnaligned(as: UInt32.self)
    let size = header.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
    guard version == KRS_HOST_OPS_VERSION, size == MemoryLayout<krs_host_ops_t>.size else {
        context.lastError.set("krs_set_host_ops: version \(version) / size \(size) do not match this library's ABI (version \(KRS_HOST_OPS_VERSION), size \(MemoryLayout<krs_host_ops_t>.size))")
        return KRS_EINVAL
    }
    context.host.set(ops.pointee)
    return KRS_OK
}

@c @implementation
public func krs_last_error(_ ctx: OpaquePointer?) -> UnsafePointer<CChar>? {
    if ctx == nil {
        if let key = initErrorKey, let p = pthread_getspecific(key) {
            return UnsafePointer(p.assumingMemoryBound(to: CChar.self))
        }
        return staticCString("")
    }
    guard let context = contexts.lookup(ctx) else { return staticCString("invalid context") }
    return context.lastError.current ?? staticCString("")
}

/// Longest distribution ID read from C (IDs are at most 16 hex characters).
private let maxDistributionIDLength = 64
/// RDATA is at most 65535 bytes (RFC 1035 RDLENGTH).
private let maxRDataLength = 65535

@c @implementation
public func krs_process_distribution(
    _ ctx: OpaquePointer?, _ distributionID: UnsafePointer<CChar>?,
    _ rdata: UnsafePointer<UnsafePointer<UInt8>?>?, _ rdataLen: UnsafePointer<Int>?, _ count: Int,
    _ outReport: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> Int32 {
    outReport?.pointee = nil
    guard let context = contexts.lookup(ctx) else { return KRS_EINVAL }
    func fail(_ code: Int32, _ message: String) -> Int32 {
        context.lastError.set(message)
        return code
    }
    guard let outReport else { return fail(KRS_EINVAL, "out_report_json is NULL") }
    guard let distributionID, strnlen(distributionID, maxDistributionIDLength + 1) <= maxDistributionIDLength,
          let id = String(validatingCString: distributionID) else {
        return fail(KRS_EINVAL, "distribution_id is NULL, too long or not UTF-8")
    }
    guard count > 0, count <= KeyReceiver.maxRecords, let rdata, let rdataLen else {
        return fail(KRS_EINVAL, "rdata, rdata_len and count must describe 1–\(KeyReceiver.maxRecords) records")
    }
    var records: [[UInt8]] = []
    records.reserveCapacity(count)
    for i in 0..<count {
        let length = rdataLen[i]
        guard length >= 0, length <= maxRDataLength else {
            return fail(KRS_EMALFORMED, "rdata_len[\(i)] = \(length) is not a valid RDATA length")
        }
        switch bytesFromC(rdata[i], length, limit: maxRDataLength) {
        case .bytes(let b): records.append(b)
        case .invalid: return fail(KRS_EINVAL, "rdata[\(i)] is NULL")
        case .tooBig: return fail(KRS_EMALFORMED, "rdata_len[\(i)] exceeds 65535")
        }
    }
    do throws(TDNSError) {
        // Parsed once here, at the C boundary; the receiver takes the parsed value, as it
        // does from the fetcher.
        let receiver = context.node.receiver
        let parsed: DistributionRecords
        do throws(TDNSError) {
            parsed = try DistributionRecords(distributionID: id, rdata: records, maxSize: receiver.settings.maxDistributionSize)
        } catch {
            receiver.recordRefusal(distributionID: id, error)
            throw error
        }
        // Through the node: krs.conf read again when it changed, counters by backend.
        let result = try context.node.process(parsed)
        var length = 0
        return deliver(text: result.reportJSON, to: outReport, length: &length)
    } catch {
        return fail(error.code.krsCode, error.reason)
    }
}

// MARK: - Lifecycle

/// Largest enrollment package read from C.
private let maxPackageLength = 64 * 1024
/// Largest DNS message (RFC 1035 over TCP).
private let maxMessageLength = 65535

@c @implementation
public func krs_enroll(_ ctx: OpaquePointer?, _ package: UnsafePointer<CChar>?, _ len: Int) -> Int32 {
    guard let context = contexts.lookup(ctx) else { return KRS_EINVAL }
    switch bytesFromC(package, len, limit: maxPackageLength) {
    case .invalid:
        context.lastError.set("package is NULL")
        return KRS_EINVAL
    case .tooBig:
        context.lastError.set("package is larger than \(maxPackageLength) bytes")
        return KRS_ETOOBIG
    case .bytes(let text):
        return context.run { () throws(TDNSError) -> Int32 in
            _ = try context.node.enroll(package: text)
            return KRS_OK
        }
    }
}

@c @implementation
public func krs_start(_ ctx: OpaquePointer?) -> Int32 {
    guard let context = contexts.lookup(ctx) else { return KRS_EINVAL }
    return context.run { () throws(TDNSError) -> Int32 in
        try context.node.start()
        return KRS_OK
    }
}

@c @implementation
public func krs_stop(_ ctx: OpaquePointer?) -> Int32 {
    guard let context = contexts.lookup(ctx) else { return KRS_EINVAL }
    context.node.stop()
    return KRS_OK
}

@c @implementation
public func krs_handle_notify(
    _ ctx: OpaquePointer?, _ msg: UnsafePointer<UInt8>?, _ len: Int,
    _ outResp: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?, _ outLen: UnsafeMutablePointer<Int>?
) -> Int32 {
    outResp?.pointee = nil
    outLen?.pointee = 0
    guard let context = contexts.lookup(ctx), let outResp, let outLen else { return KRS_EINVAL }
    switch bytesFromC(msg, len, limit: maxMessageLength) {
    case .invalid: return KRS_EINVAL
    case .tooBig: return KRS_EMALFORMED
    case .bytes(let request):
        guard let answer = context.node.handleNotify(request) else {
            context.lastError.set("not a DNS request")
            return KRS_EMALFORMED
        }
        return deliver(answer, to: outResp, length: outLen)
    }
}

@c @implementation
public func krs_fetch(_ ctx: OpaquePointer?, _ distributionID: UnsafePointer<CChar>?) -> Int32 {
    guard let context = contexts.lookup(ctx) else { return KRS_EINVAL }
    guard let distributionID, strnlen(distributionID, maxDistributionIDLength + 1) <= maxDistributionIDLength,
          let id = String(validatingCString: distributionID) else {
        context.lastError.set("distribution_id is NULL, too long or not UTF-8")
        return KRS_EINVAL
    }
    return context.run { () throws(TDNSError) -> Int32 in
        try context.node.fetchAndConfirm(id)
        return KRS_OK
    }
}

@c @implementation
public func krs_status_json(_ ctx: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    out?.pointee = nil
    guard let context = contexts.lookup(ctx), let out else { return KRS_EINVAL }
    var length = 0
    return deliver(text: context.node.statusJSON(), to: out, length: &length)
}
