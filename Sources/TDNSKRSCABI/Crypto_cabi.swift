import TDNSCore
import CTDNSKRS
import Synchronization
import TDNSCrypto

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Key handles

/// What a `void *` key handle of crypto.h stands for.
enum KeyObject: Sendable {
    case hpkePublic(HPKEPublicKey)
    case hpkePrivate(HPKEPrivateKey)
    case josePublic(JOSEPublicKey)
    case josePrivate(JOSEPrivateKey)
}

/// Live key handles (see ``HandleTable``).
private let keyHandles = HandleTable<KeyObject>()

// MARK: - Backend plumbing shared by "hpke" and "jose"

/// The operations a backend supplies; the C entry points below do all pointer work once.
protocol CryptoBackendOps {
    static func generate() throws(TDNSError) -> (public: KeyObject, private: KeyObject)
    static func parsePublic(_ text: [UInt8]) throws(TDNSError) -> KeyObject
    static func parsePrivate(_ text: [UInt8]) throws(TDNSError) -> KeyObject
    static func encrypt(_ plaintext: [UInt8], to key: KeyObject) throws(TDNSError) -> [UInt8]
    static func decrypt(_ ciphertext: [UInt8], with key: KeyObject) throws(TDNSError) -> [UInt8]
    static func serializePublic(_ key: KeyObject) throws(TDNSError) -> String
    static func serializePrivate(_ key: KeyObject) throws(TDNSError) -> String
    static func isPublic(_ key: KeyObject) -> Bool
    static func isPrivate(_ key: KeyObject) -> Bool
    static var maxCiphertext: Int { get }
}

enum BackendEntry<Ops: CryptoBackendOps> {
    /// generate_keypair(void **priv_key, void **pub_key): the design's order, private first.
    static func generateKeypair(
        _ priv: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ pub: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
    ) -> Int32 {
        priv?.pointee = nil
        pub?.pointee = nil
        guard let priv, let pub else { return KRS_EINVAL }
        do {
            let pair = try Ops.generate()
            guard let privHandle = keyHandles.addRaw(pair.private) else { return KRS_ERROR }
            guard let pubHandle = keyHandles.addRaw(pair.public) else {
                freePrivate(privHandle)
                return KRS_ERROR
            }
            priv.pointee = privHandle
            pub.pointee = pubHandle
            return KRS_OK
        } catch {
            return error.code.krsCode
        }
    }

    static func parse(
        _ data: UnsafePointer<CChar>?, _ len: Int, _ out: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
        _ parser: ([UInt8]) throws(TDNSError) -> KeyObject
    ) -> Int32 {
        out?.pointee = nil
        guard let out else { return KRS_EINVAL }
        switch bytesFromC(data, len, limit: CryptoLimits.maxKeyText) {
        case .invalid: return KRS_EINVAL
        case .tooBig: return KRS_ETOOBIG
        case .bytes(var text):
            defer { zeroize(&text) }
            do {
                guard let handle = keyHandles.addRaw(try parser(text)) else { return KRS_ERROR }
                out.pointee = handle
                return KRS_OK
            } catch {
                return error.code.krsCode
            }
        }
    }

    static func encrypt(
        _ key: UnsafeMutableRawPointer?, _ pt: UnsafePointer<UInt8>?, _ ptLen: Int,
        _ ct: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?, _ ctLen: UnsafeMutablePointer<Int>?
    ) -> Int32 {
        ct?.pointee = nil
        ctLen?.pointee = 0
        guard let ct, let ctLen, let object = keyHandles.lookup(key) else { return KRS_EINVAL }
        guard Ops.isPublic(object) else { return KRS_EKEYTYPE }
        switch bytesFromC(pt, ptLen, limit: CryptoLimits.maxPlaintext) {
        case .invalid: return KRS_EINVAL
        case .tooBig: return KRS_ETOOBIG
        case .bytes(var plaintext):
            defer { zeroize(&plaintext) }
            do {
                return deliver(try Ops.encrypt(plaintext, to: object), to: ct, length: ctLen)
            } catch {
                return error.code.krsCode
            }
        }
    }

    static func decrypt(
        _ key: UnsafeMutableRawPointer?, _ ct: UnsafePointer<UInt8>?, _ ctLen: Int,
        _ pt: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?, _ ptLen: UnsafeMutablePointer<Int>?
    ) -> Int32 {
        pt?.pointee = nil
        ptLen?.pointee = 0
        guard let pt, let ptLen, let object = keyHandles.lookup(key) else { return KRS_EINVAL }
        guard Ops.isPrivate(object) else { return KRS_EKEYTYPE }
        switch bytesFromC(ct, ctLen, limit: Ops.maxCiphertext) {
        case .invalid: return KRS_EINVAL
        case .tooBig: return KRS_ETOOBIG
        case .bytes(let ciphertext):
            do {
                var plaintext = try Ops.decrypt(ciphertext, with: object)
                defer { zeroize(&plaintext) }
                return deliver(plaintext, to: pt, length: ptLen)
            } catch {
                return error.code.krsCode
            }
        }
    }

    static func serialize(
        _ key: UnsafeMutableRawPointer?, _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
        _ outLen: UnsafeMutablePointer<Int>?, _ serializer: (KeyObject) throws(TDNSError) -> String
    ) -> Int32 {
        out?.pointee = nil
        outLen?.pointee = 0
        guard let out, let outLen, let object = keyHandles.lookup(key) else { return KRS_EINVAL }
        guard Ops.isPublic(object) || Ops.isPrivate(object) else { return KRS_EKEYTYPE }
        do {
            return deliver(text: try serializer(object), to: out, length: outLen)
        } catch {
            return error.code.krsCode
        }
    }

    static func freePublic(_ key: UnsafeMutableRawPointer?) {
        keyHandles.remove(key, if: Ops.isPublic)
    }

    static func freePrivate(_ key: UnsafeMutableRawPointer?) {
        keyHandles.remove(key, if: Ops.isPrivate)
    }
}

// MARK: - "hpke"

enum HPKEBackendOps: CryptoBackendOps {
    static func generate() throws(TDNSError) -> (public: KeyObject, private: KeyObject) {
        let key = HPKEPrivateKey.generate()
        return (.hpkePublic(key.publicKey), .hpkePrivate(key))
    }
    static func parsePublic(_ text: [UInt8]) throws(TDNSError) -> KeyObject { .hpkePublic(try HPKEPublicKey(text: text)) }
    static func parsePrivate(_ text: [UInt8]) throws(TDNSError) -> KeyObject { .hpkePrivate(try HPKEPrivateKey(text: text)) }
    static func encrypt(_ plaintext: [UInt8], to key: KeyObject) throws(TDNSError) -> [UInt8] {
        guard case .hpkePublic(let k) = key else { throw TDNSError(.wrongKeyType, "not an HPKE public key") }
        return try HPKECipher.seal(plaintext, to: k)
    }
    static func decrypt(_ ciphertext: [UInt8], with key: KeyObject) throws(TDNSError) -> [UInt8] {
        guard case .hpkePrivate(let k) = key else { throw TDNSError(.wrongKeyType, "not an HPKE private key") }
        return try HPKECipher.open(ciphertext, with: k)
    }
    static func serializePublic(_ key: KeyObject) throws(TDNSError) -> String {
        switch key {
        case .hpkePublic(let k): return k.hex
        case .hpkePrivate(let k): return k.publicKey.hex
        default: throw TDNSError(.wrongKeyType, "not an HPKE key")
        }
    }
    static func serializePrivate(_ key: KeyObject) throws(TDNSError) -> String {
        guard case .hpkePrivate(let k) = key else { throw TDNSError(.wrongKeyType, "not an HPKE private key") }
        return k.hex
    }
    static func isPublic(_ key: KeyObject) -> Bool { if case .hpkePublic = key { true } else { false } }
    static func isPrivate(_ key: KeyObject) -> Bool { if case .hpkePrivate = key { true } else { false } }
    static var maxCiphertext: Int { CryptoLimits.maxHPKECiphertext }
}

// MARK: - "jose"

enum JOSEBackendOps: CryptoBackendOps {
    static func generate() throws(TDNSError) -> (public: KeyObject, private: KeyObject) {
        let key = try JOSEPrivateKey.generate()
        return (.josePublic(key.publicKey), .josePrivate(key))
    }
    static func parsePublic(_ text: [UInt8]) throws(TDNSError) -> KeyObject { .josePublic(try JOSEPublicKey(jwk: text)) }
    static func parsePrivate(_ text: [UInt8]) throws(TDNSError) -> KeyObject { .josePrivate(try JOSEPrivateKey(jwk: text)) }
    static func encrypt(_ plaintext: [UInt8], to key: KeyObject) throws(TDNSError) -> [UInt8] {
        guard case .josePublic(let k) = key else { throw TDNSError(.wrongKeyType, "not a JOSE public key") }
        return try JWE.encrypt(plaintext, to: k)
    }
    static func decrypt(_ ciphertext: [UInt8], with key: KeyObject) throws(TDNSError) -> [UInt8] {
        guard case .josePrivate(let k) = key else { throw TDNSError(.wrongKeyType, "not a JOSE private key") }
        return try JWE.decrypt(ciphertext, with: k)
    }
    static func serializePublic(_ key: KeyObject) throws(TDNSError) -> String {
        switch key {
        case .josePublic(let k): return k.jwkJSON()
        case .josePrivate(let k): return k.publicKey.jwkJSON()
        default: throw TDNSError(.wrongKeyType, "not a JOSE key")
        }
    }
    static func serializePrivate(_ key: KeyObject) throws(TDNSError) -> String {
        guard case .josePrivate(let k) = key else { throw TDNSError(.wrongKeyType, "not a JOSE private key") }
        return k.jwkJSON()
    }
    static func isPublic(_ key: KeyObject) -> Bool { if case .josePublic = key { true } else { false } }
    static func isPrivate(_ key: KeyObject) -> Bool { if case .josePrivate = key { true } else { false } }
    static var maxCiphertext: Int { CryptoLimits.maxJWECompact }
}

// MARK: - crypto_get_backend

/// The two backend tables, in one page of their own that is made read-only once they are
/// written. crypto_get_backend returns `crypto_backend_t *` (not const), as the design
/// declares it, so nothing in C stops a caller from assigning to a member; with the page
/// read-only such a write is a SIGSEGV at the faulty line instead of a silently corrupted
/// table that every other user of the library (another plugin in the same host) would call
/// through. Written once by Swift's thread-safe lazy global initialisation.
///
/// The function pointers are non-capturing closures over a concrete BackendEntry, which Swift
/// emits as plain C functions (a closure over a generic parameter could not be one).
nonisolated(unsafe) private let backendTables: (hpke: UnsafeMutablePointer<crypto_backend_t>, jose: UnsafeMutablePointer<crypto_backend_t>) = {
    typealias H = BackendEntry<HPKEBackendOps>
    typealias J = BackendEntry<JOSEBackendOps>
    let hpke = crypto_backend_t(
        name: staticCString("hpke"),
        generate_keypair: { H.generateKeypair($0, $1) },
        parse_public_key: { H.parse($0, $1, $2, HPKEBackendOps.parsePublic) },
        parse_private_key: { H.parse($0, $1, $2, HPKEBackendOps.parsePrivate) },
        encrypt: { H.encrypt($0, $1, $2, $3, $4) },
        decrypt: { H.decrypt($0, $1, $2, $3, $4) },
        free_public_key: { H.freePublic($0) },
        free_private_key: { H.freePrivate($0) },
        serialize_public_key: { H.serialize($0, $1, $2, HPKEBackendOps.serializePublic) },
        serialize_private_key: { H.serialize($0, $1, $2, HPKEBackendOps.serializePrivate) })
    let jose = crypto_backend_t(
        name: staticCString("jose"),
        generate_keypair: { J.generateKeypair($0, $1) },
        parse_public_key: { J.parse($0, $1, $2, JOSEBackendOps.parsePublic) },
        parse_private_key: { J.parse($0, $1, $2, JOSEBackendOps.parsePrivate) },
        encrypt: { J.encrypt($0, $1, $2, $3, $4) },
        decrypt: { J.decrypt($0, $1, $2, $3, $4) },
        free_public_key: { J.freePublic($0) },
        free_private_key: { J.freePrivate($0) },
        serialize_public_key: { J.serialize($0, $1, $2, JOSEBackendOps.serializePublic) },
        serialize_private_key: { J.serialize($0, $1, $2, JOSEBackendOps.serializePrivate) })
    let stride = MemoryLayout<crypto_backend_t>.stride
    let pageSize = max(Int(sysconf(Int32(_SC_PAGESIZE))), 2 * stride)
    let raw = mmap(nil, pageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    guard let raw, raw != UnsafeMutableRawPointer(bitPattern: -1) else {
        // No page to spare (the process is out of address space): ordinary, writable memory.
        // The library works as before; only the protection against writes is lost.
        let tables = UnsafeMutablePointer<crypto_backend_t>.allocate(capacity: 2)
        tables.initialize(to: hpke)
        (tables + 1).initialize(to: jose)
        return (tables, tables + 1)
    }
    let tables = raw.bindMemory(to: crypto_backend_t.self, capacity: 2)
    tables.initialize(to: hpke)
    (tables + 1).initialize(to: jose)
    // Should mprotect fail, the tables stay writable but correct.
    _ = mprotect(raw, pageSize, PROT_READ)
    return (tables, tables + 1)
}()

@c @implementation
public func crypto_get_backend(_ name: UnsafePointer<CChar>?) -> UnsafeMutablePointer<crypto_backend_t>? {
    // At most 5 bytes are read: a long name is not read to its end.
    guard let name, strnlen(name, 5) == 4 else { return nil }
    let bytes = UnsafeRawBufferPointer(start: name, count: 4)
    if bytes.elementsEqual("hpke".utf8) { return backendTables.hpke }
    if bytes.elementsEqual("jose".utf8) { return backendTables.jose }
    return nil
}

@c @implementation
public func crypto_decrypt(
    _ backend: UnsafeMutablePointer<crypto_backend_t>?, _ privKey: UnsafeMutableRawPointer?,
    _ ct: UnsafePointer<UInt8>?, _ ctLen: Int,
    _ pt: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?, _ ptLen: UnsafeMutablePointer<Int>?
) -> Int32 {
    // Only our own tables are used: a foreign pointer is compared, never called through.
    switch backend {
    case backendTables.hpke?: return BackendEntry<HPKEBackendOps>.decrypt(privKey, ct, ctLen, pt, ptLen)
    case backendTables.jose?: return BackendEntry<JOSEBackendOps>.decrypt(privKey, ct, ctLen, pt, ptLen)
    default:
        pt?.pointee = nil
        ptLen?.pointee = 0
        return KRS_EINVAL
    }
}
