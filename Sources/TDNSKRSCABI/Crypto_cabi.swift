import TDNSCore
import CTDNSKRS
import Synchronization
import TDNSCrypto

// MARK: - Key handles

/// What a `void *` key handle of crypto.h stands for.
enum KeyObject: Sendable {
    case hpkePublic(HPKEPublicKey)
    case hpkePrivate(HPKEPrivateKey)
    case josePublic(JOSEPublicKey)
    case josePrivate(JOSEPrivateKey)
}

/// Live key handles. A handle is a number from a counter that never repeats, dressed as a
/// pointer; it is only ever used as a dictionary key, never dereferenced. A stale, foreign or
/// garbage handle therefore yields KRS_EINVAL instead of a crash, and a freed handle can never
/// come back to life as some other key.
private final class KeyHandles: Sendable {
    static let shared = KeyHandles()
    private struct State {
        var live: [UInt: KeyObject] = [:]
        var next: UInt = 0x1000
    }
    private let state = Mutex(State())

    /// Registers a key; nil only if the counter could not form a pointer (it cannot: it is never 0).
    func make(_ object: KeyObject) -> UnsafeMutableRawPointer? {
        state.withLock { s in
            // Step by 16 so handles look like aligned pointers; 2^60 handles before wrapping.
            s.next &+= 16
            if s.next == 0 { s.next = 0x1000 }
            s.live[s.next] = object
            return UnsafeMutableRawPointer(bitPattern: s.next)
        }
    }

    func lookup(_ handle: UnsafeMutableRawPointer?) -> KeyObject? {
        guard let handle else { return nil }
        return state.withLock { $0.live[UInt(bitPattern: handle)] }
    }

    /// Releases a handle if it is live and `matches` accepts its object.
    func release(_ handle: UnsafeMutableRawPointer?, if matches: (KeyObject) -> Bool) {
        guard let handle else { return }
        state.withLock { s in
            let key = UInt(bitPattern: handle)
            if let object = s.live[key], matches(object) { s.live[key] = nil }
        }
    }
}

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
    static func generateKeypair(
        _ pub: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ priv: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
    ) -> Int32 {
        pub?.pointee = nil
        priv?.pointee = nil
        guard let pub, let priv else { return KRS_EINVAL }
        do {
            let pair = try Ops.generate()
            guard let pubHandle = KeyHandles.shared.make(pair.public) else { return KRS_ERROR }
            guard let privHandle = KeyHandles.shared.make(pair.private) else {
                freePublic(pubHandle)
                return KRS_ERROR
            }
            pub.pointee = pubHandle
            priv.pointee = privHandle
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
                guard let handle = KeyHandles.shared.make(try parser(text)) else { return KRS_ERROR }
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
        guard let ct, let ctLen, let object = KeyHandles.shared.lookup(key) else { return KRS_EINVAL }
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
        guard let pt, let ptLen, let object = KeyHandles.shared.lookup(key) else { return KRS_EINVAL }
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
        guard let out, let outLen, let object = KeyHandles.shared.lookup(key) else { return KRS_EINVAL }
        guard Ops.isPublic(object) || Ops.isPrivate(object) else { return KRS_EKEYTYPE }
        do {
            return deliver(text: try serializer(object), to: out, length: outLen)
        } catch {
            return error.code.krsCode
        }
    }

    static func freePublic(_ key: UnsafeMutableRawPointer?) {
        KeyHandles.shared.release(key, if: Ops.isPublic)
    }

    static func freePrivate(_ key: UnsafeMutableRawPointer?) {
        KeyHandles.shared.release(key, if: Ops.isPrivate)
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

/// The two tables live in static memory for the life of the process: written once by
/// Swift's thread-safe lazy global initialisation, read-only afterwards.
/// The function pointers are non-capturing closures over a concrete BackendEntry, which Swift
/// emits as plain C functions (a closure over a generic parameter could not be one).
nonisolated(unsafe) private let hpkeBackend: UnsafeMutablePointer<crypto_backend_t> = {
    typealias E = BackendEntry<HPKEBackendOps>
    let p = UnsafeMutablePointer<crypto_backend_t>.allocate(capacity: 1)
    p.initialize(to: crypto_backend_t(
        name: staticCString("hpke"),
        generate_keypair: { E.generateKeypair($0, $1) },
        parse_public_key: { E.parse($0, $1, $2, HPKEBackendOps.parsePublic) },
        parse_private_key: { E.parse($0, $1, $2, HPKEBackendOps.parsePrivate) },
        encrypt: { E.encrypt($0, $1, $2, $3, $4) },
        decrypt: { E.decrypt($0, $1, $2, $3, $4) },
        free_public_key: { E.freePublic($0) },
        free_private_key: { E.freePrivate($0) },
        serialize_public_key: { E.serialize($0, $1, $2, HPKEBackendOps.serializePublic) },
        serialize_private_key: { E.serialize($0, $1, $2, HPKEBackendOps.serializePrivate) }))
    return p
}()

nonisolated(unsafe) private let joseBackend: UnsafeMutablePointer<crypto_backend_t> = {
    typealias E = BackendEntry<JOSEBackendOps>
    let p = UnsafeMutablePointer<crypto_backend_t>.allocate(capacity: 1)
    p.initialize(to: crypto_backend_t(
        name: staticCString("jose"),
        generate_keypair: { E.generateKeypair($0, $1) },
        parse_public_key: { E.parse($0, $1, $2, JOSEBackendOps.parsePublic) },
        parse_private_key: { E.parse($0, $1, $2, JOSEBackendOps.parsePrivate) },
        encrypt: { E.encrypt($0, $1, $2, $3, $4) },
        decrypt: { E.decrypt($0, $1, $2, $3, $4) },
        free_public_key: { E.freePublic($0) },
        free_private_key: { E.freePrivate($0) },
        serialize_public_key: { E.serialize($0, $1, $2, JOSEBackendOps.serializePublic) },
        serialize_private_key: { E.serialize($0, $1, $2, JOSEBackendOps.serializePrivate) }))
    return p
}()

@c @implementation
public func crypto_get_backend(_ name: UnsafePointer<CChar>?) -> UnsafePointer<crypto_backend_t>? {
    guard let name else { return nil }
    switch String(validatingCString: name) {
    case "hpke": return UnsafePointer(hpkeBackend)
    case "jose": return UnsafePointer(joseBackend)
    default: return nil
    }
}
