import TDNSCore
import CTDNSKRS
import Synchronization
import TDNSCrypto

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Return codes

extension TDNSError.Code {
    /// Include/tdnskrs/common.h's return code of each error code, 1:1.
    static let krsCodes: [TDNSError.Code: Int32] = [
        .cryptoFailure: KRS_ECRYPTO, .wrongKeyType: KRS_EKEYTYPE, .malformed: KRS_EMALFORMED, .tooBig: KRS_ETOOBIG,
        .policy: KRS_EPOLICY, .internalFailure: KRS_ERROR, .authentication: KRS_EAUTH, .unsigned: KRS_EUNSIGNED,
        .replay: KRS_EREPLAY, .stale: KRS_ESTALE, .storage: KRS_ESTORAGE, .config: KRS_ECONFIG,
        .wrongNode: KRS_EWRONGNODE, .keyMismatch: KRS_EKEYMISMATCH, .network: KRS_ENETWORK,
        .timeout: KRS_ETIMEOUT, .dns: KRS_EDNS,
    ]

    /// The C return code of Include/tdnskrs/common.h; KRS_ERROR for a code without one.
    var krsCode: Int32 { Self.krsCodes[self] ?? KRS_ERROR }
}

@c @implementation
public func krs_strerror(_ code: Int32) -> UnsafePointer<CChar>? {
    switch code {
    case KRS_OK: staticCString("success")
    case KRS_ERROR: staticCString("internal error")
    case KRS_ENOMEM: staticCString("out of memory")
    case KRS_EINVAL: staticCString("invalid argument")
    case KRS_ECRYPTO: staticCString("cryptographic failure: wrong key, bad signature or tampered data")
    case KRS_EDNS: staticCString("DNS protocol error")
    case KRS_EKEYTYPE: staticCString("key of the wrong type for this operation")
    case KRS_EMALFORMED: staticCString("malformed input")
    case KRS_ETOOBIG: staticCString("input exceeds a size limit")
    case KRS_EPOLICY: staticCString("refused by policy: algorithm or header not allowed")
    case KRS_EAUTH: staticCString("authentication failed: signature or HMAC did not verify")
    case KRS_EUNSIGNED: staticCString("unsigned distribution refused: signatures are required")
    case KRS_EREPLAY: staticCString("replay: distribution already processed")
    case KRS_ESTALE: staticCString("stale: timestamp outside the accepted window")
    case KRS_ESTORAGE: staticCString("key store or state directory write failed")
    case KRS_ECONFIG: staticCString("invalid configuration")
    case KRS_EWRONGNODE: staticCString("distribution is for another node or another distribution ID")
    case KRS_EKEYMISMATCH: staticCString("key material does not match its key tag or DNSKEY")
    case KRS_ENETWORK: staticCString("network failure")
    case KRS_ETIMEOUT: staticCString("timed out")
    default: staticCString("unknown error")
    }
}

// MARK: - Buffers handed to C

/// Every buffer handed to C is recorded with its size, so krs_free can zeroize it and can
/// tell our pointers from foreign ones (a foreign or already-freed pointer is ignored rather
/// than corrupting the host's heap).
final class OutputBuffers: Sendable {
    static let shared = OutputBuffers()
    private let sizes = Mutex<[UInt: Int]>([:])

    /// A new malloc'ed block of `byteCount` bytes, registered for krs_free; nil when memory is
    /// exhausted.
    func allocate(byteCount: Int) -> UnsafeMutableRawPointer? {
        guard byteCount > 0, let raw = malloc(byteCount) else { return nil }
        sizes.withLock { $0[UInt(bitPattern: raw)] = byteCount }
        return raw
    }

    /// Copies bytes into a new malloc'ed buffer with a trailing NUL (not counted), or nil
    /// when memory is exhausted.
    func make(_ bytes: some Collection<UInt8>) -> UnsafeMutablePointer<UInt8>? {
        let count = bytes.count
        guard count < Int.max, let raw = allocate(byteCount: count + 1) else { return nil }
        let p = raw.bindMemory(to: UInt8.self, capacity: count + 1)
        _ = UnsafeMutableBufferPointer(start: p, count: count).initialize(from: bytes)
        p[count] = 0
        return p
    }

    func free(_ raw: UnsafeMutableRawPointer) {
        guard let size = sizes.withLock({ $0.removeValue(forKey: UInt(bitPattern: raw)) }) else { return }
        explicit_bzero(raw, size)
        Glibc.free(raw)
    }
}

@c @implementation
public func krs_free(_ p: UnsafeMutableRawPointer?) {
    guard let p else { return }
    OutputBuffers.shared.free(p)
}

/// Stores `bytes` into a (buffer, length) out-parameter pair. Returns KRS_OK or KRS_ENOMEM.
func deliver(
    _ bytes: some Collection<UInt8>,
    to out: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>,
    length outLength: UnsafeMutablePointer<Int>
) -> Int32 {
    guard let buffer = OutputBuffers.shared.make(bytes) else { return KRS_ENOMEM }
    out.pointee = buffer
    outLength.pointee = bytes.count
    return KRS_OK
}

/// Same for a text result (char ** / size_t *); the buffer is NUL-terminated.
func deliver(
    text: String,
    to out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>,
    length outLength: UnsafeMutablePointer<Int>
) -> Int32 {
    var utf8 = Array(text.utf8)
    defer { zeroize(&utf8) }
    guard let buffer = OutputBuffers.shared.make(utf8) else { return KRS_ENOMEM }
    out.pointee = UnsafeMutableRawPointer(buffer).assumingMemoryBound(to: CChar.self)
    outLength.pointee = utf8.count
    return KRS_OK
}

/// Input bytes read from C memory, checked before they are copied.
enum CInput {
    case bytes([UInt8])
    /// NULL with a non-zero length, or a length that is negative as a Swift Int.
    case invalid
    /// Longer than the caller's limit: refused without reading it.
    case tooBig
}

/// Copies `len` bytes from C memory. A `size_t` above Int.max arrives here negative; it is
/// refused rather than handed to an initializer that would trap.
func bytesFromC(_ p: UnsafeRawPointer?, _ len: Int, limit: Int) -> CInput {
    guard len >= 0 else { return .invalid }
    guard len <= limit else { return .tooBig }
    guard len > 0 else { return .bytes([]) }
    guard let p else { return .invalid }
    return .bytes(Array(UnsafeRawBufferPointer(start: p, count: len)))
}
