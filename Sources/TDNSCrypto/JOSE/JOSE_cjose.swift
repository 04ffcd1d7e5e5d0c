// The only file that talks to cjose (STYLE §10). Everything here receives input that the
// strict parsers in JOSEKeys.swift and JWK.swift have already checked; no C pointer leaves
// this file.
//
// cjose 0.6.2.1 facts relied on (checked against the installed library):
// - A JWE made by `cjose_jwe_encrypt` with a header of only "alg" and "enc" gets exactly one
//   more member, "epk" {"kty","crv","x","y"}; a "kid" is added only when the key has one, and
//   keys built here never do. Its header JSON has spaces after ':' and ','; that is harmless,
//   the header segment is the AEAD's AAD as sent.
// - `cjose_jwe_decrypt` honours "apu"/"apv" in the Concat KDF (RFC 7518 §4.6.2) and decrypts
//   an empty plaintext (to a non-NULL buffer of length 0).
// - A JWS signed with a header of "alg","cty","typ" serializes the header exactly as go-jose
//   does; ES256 signatures are 64 bytes r‖s.
// - It does NOT refuse "crit", a 16-byte IV or a non-empty encrypted key with ECDH-ES (those
//   reach AES-GCM and fail there, if at all); the pre-parse refuses them. It does refuse
//   truncated GCM tags.

import TDNSCore
import CCjose
import Synchronization

/// A cjose key object (`cjose_jwk_t`) owned by Swift and released in `deinit`.
///
/// Why the lock: a cjose JWK carries a plain, non-atomic reference count and cjose does not
/// document any of its key functions as thread-safe, while our key objects are `Sendable` and
/// a host server (named, knotd) calls us from several worker threads with the same key. So
/// every cjose call that is handed this key runs under `lock`. The cost is that
/// operations with one key are serialized; different keys never contend.
final class CJOSEKey: Sendable {
    /// Guards every use of `pointer`. (The pointer itself is not the mutex's value because
    /// region-based isolation would then refuse to pass it to C next to other C pointers.)
    private let lock = Mutex<Void>(())
    private nonisolated(unsafe) let pointer: OpaquePointer

    /// Builds a P-256 key from raw, already validated coordinates (and scalar): never from
    /// untrusted JWK text, which cjose would parse with its own, laxer rules.
    init(x: [UInt8], y: [UInt8], d: [UInt8]?) throws(TDNSError) {
        var err = cjose_err()
        // cjose copies the spec's bytes; its pointers are non-const only by declaration.
        let created: OpaquePointer? = x.withUnsafeBufferPointer { xp in
            y.withUnsafeBufferPointer { yp in
                (d ?? []).withUnsafeBufferPointer { dp in
                    var spec = cjose_jwk_ec_keyspec()
                    spec.crv = CJOSE_JWK_EC_P_256
                    spec.x = xp.baseAddress.map { UnsafeMutablePointer(mutating: $0) }
                    spec.xlen = xp.count
                    spec.y = yp.baseAddress.map { UnsafeMutablePointer(mutating: $0) }
                    spec.ylen = yp.count
                    if d != nil {
                        spec.d = dp.baseAddress.map { UnsafeMutablePointer(mutating: $0) }
                        spec.dlen = dp.count
                    }
                    return cjose_jwk_create_EC_spec(&spec, &err)
                }
            }
        }
        guard let created else {
            throw .internalFailure("cjose could not create the key: \(cjoseMessage(err))")
        }
        pointer = created
    }

    deinit {
        withKey { key in _ = cjose_jwk_release(key) }
    }

    /// Runs `body` with the cjose key while holding the lock.
    func withKey<R: Sendable, E: Error>(_ body: (OpaquePointer) throws(E) -> R) throws(E) -> R {
        try lock.withLock { (_) throws(E) -> R in try body(pointer) }
    }
}

/// Thin wrappers over the cjose calls JWE and JWS need.
enum CJOSE {
    /// ECDH-ES + A256GCM compact JWE of `plaintext` to `key` (PROTOCOL §8.2).
    static func jweEncrypt(_ plaintext: [UInt8], to key: CJOSEKey) throws(TDNSError) -> [UInt8] {
        var err = cjose_err()
        guard let header = cjose_header_new(&err) else {
            throw .internalFailure("cjose_header_new failed: \(cjoseMessage(err))")
        }
        defer { cjose_header_release(header) }
        guard cjose_header_set(header, "alg", "ECDH-ES", &err), cjose_header_set(header, "enc", "A256GCM", &err) else {
            throw .internalFailure("cjose_header_set failed: \(cjoseMessage(err))")
        }
        return try key.withKey { (jwk) throws(TDNSError) -> [UInt8] in
            let jwe: OpaquePointer? = withNonNullBytes(plaintext) { p, n in
                cjose_jwe_encrypt(jwk, header, p, n, &err)
            }
            guard let jwe else { throw .internalFailure("cjose_jwe_encrypt failed: \(cjoseMessage(err))") }
            defer { cjose_jwe_release(jwe) }
            guard let text = cjose_jwe_export(jwe, &err) else {
                throw .internalFailure("cjose_jwe_export failed: \(cjoseMessage(err))")
            }
            defer { cjoseFree(UnsafeMutableRawPointer(text), clearing: 0) }
            return copyCString(text)
        }
    }

    /// Decrypts a compact JWE that passed the strict pre-parse. The plaintext cjose returns is
    /// copied, then cleared and freed.
    static func jweDecrypt(_ compact: [UInt8], with key: CJOSEKey) throws(TDNSError) -> [UInt8] {
        var err = cjose_err()
        let imported: OpaquePointer? = withNonNullChars(compact) { p, n in cjose_jwe_import(p, n, &err) }
        guard let jwe = imported else {
            throw .malformed("JWE rejected by cjose: \(cjoseMessage(err))")
        }
        defer { cjose_jwe_release(jwe) }
        return try key.withKey { (jwk) throws(TDNSError) -> [UInt8] in
            var length = 0
            err.code = CJOSE_ERR_NONE
            guard let plaintext = cjose_jwe_decrypt(jwe, jwk, &length, &err) else {
                if err.code == CJOSE_ERR_NO_MEMORY { throw .internalFailure("cjose_jwe_decrypt: out of memory") }
                throw .cryptoFailure("JWE decryption failed")
            }
            defer { cjoseFree(UnsafeMutableRawPointer(plaintext), clearing: length) }
            guard length <= CryptoLimits.maxPlaintext else {
                throw .tooBig("JWE plaintext exceeds \(CryptoLimits.maxPlaintext) bytes")
            }
            return Array(UnsafeBufferPointer(start: plaintext, count: length))
        }
    }

    /// ES256 compact JWS over `payload` with the go-jose header (PROTOCOL §8.3).
    static func jwsSign(_ payload: [UInt8], with key: CJOSEKey) throws(TDNSError) -> [UInt8] {
        var err = cjose_err()
        guard let header = cjose_header_new(&err) else {
            throw .internalFailure("cjose_header_new failed: \(cjoseMessage(err))")
        }
        defer { cjose_header_release(header) }
        guard cjose_header_set(header, "alg", "ES256", &err),
              cjose_header_set(header, "cty", "application/octet-stream", &err),
              cjose_header_set(header, "typ", "JWS", &err)
        else {
            throw .internalFailure("cjose_header_set failed: \(cjoseMessage(err))")
        }
        return try key.withKey { (jwk) throws(TDNSError) -> [UInt8] in
            let jws: OpaquePointer? = withNonNullBytes(payload) { p, n in cjose_jws_sign(jwk, header, p, n, &err) }
            guard let jws else { throw .internalFailure("cjose_jws_sign failed: \(cjoseMessage(err))") }
            defer { cjose_jws_release(jws) }
            var text: UnsafePointer<CChar>? = nil
            guard cjose_jws_export(jws, &text, &err), let text else {
                throw .internalFailure("cjose_jws_export failed: \(cjoseMessage(err))")
            }
            return copyCString(text)  // owned by the JWS object
        }
    }

    /// Verifies a compact JWS that passed the strict pre-parse.
    static func jwsVerify(_ compact: [UInt8], with key: CJOSEKey) throws(TDNSError) {
        var err = cjose_err()
        let imported: OpaquePointer? = withNonNullChars(compact) { p, n in cjose_jws_import(p, n, &err) }
        guard let jws = imported else {
            throw .malformed("JWS rejected by cjose: \(cjoseMessage(err))")
        }
        defer { cjose_jws_release(jws) }
        let valid = key.withKey { jwk in cjose_jws_verify(jws, jwk, &err) }
        guard valid else {
            if err.code == CJOSE_ERR_NO_MEMORY { throw .internalFailure("cjose_jws_verify: out of memory") }
            throw .cryptoFailure("JWS signature verification failed")
        }
    }
}

// MARK: - helpers

private func cjoseMessage(_ err: cjose_err) -> String {
    guard let message = err.message else { return "unknown error" }
    return String(cString: message)
}

/// Clears `count` bytes (for buffers that held plaintext), then frees with cjose's own
/// deallocator, which is what allocated them. We never change cjose's allocator (STYLE §4).
private func cjoseFree(_ pointer: UnsafeMutableRawPointer, clearing count: Int) {
    if count > 0 { clearBytes(pointer, count) }
    if let dealloc = cjose_get_dealloc() {
        dealloc(pointer)
    }
}

/// Byte-wise clear through a function the optimizer does not inline; the following call into
/// C through a function pointer keeps the stores from being discarded as dead.
@inline(never)
private func clearBytes(_ pointer: UnsafeMutableRawPointer, _ count: Int) {
    for i in 0..<count { pointer.storeBytes(of: 0, toByteOffset: i, as: UInt8.self) }
}

private func copyCString(_ text: UnsafePointer<CChar>) -> [UInt8] {
    var n = 0
    while text[n] != 0 { n += 1 }
    return text.withMemoryRebound(to: UInt8.self, capacity: n) { Array(UnsafeBufferPointer(start: $0, count: n)) }
}

/// Calls `body` with a non-NULL pointer even for empty input (cjose checks for NULL).
private func withNonNullBytes<R>(_ bytes: [UInt8], _ body: (UnsafePointer<UInt8>, Int) -> R) -> R {
    if bytes.isEmpty {
        var zero: UInt8 = 0
        return withUnsafePointer(to: &zero) { body($0, 0) }
    }
    return bytes.withUnsafeBufferPointer { buf in
        guard let base = buf.baseAddress else {
            var zero: UInt8 = 0
            return withUnsafePointer(to: &zero) { body($0, 0) }
        }
        return body(base, buf.count)
    }
}

private func withNonNullChars<R>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>, Int) -> R) -> R {
    withNonNullBytes(bytes) { p, n in
        UnsafeRawPointer(p).withMemoryRebound(to: CChar.self, capacity: max(n, 1)) { body($0, n) }
    }
}
