import Crypto
import Foundation
import Testing
import TDNSCore
import TDNSTestSupport

@testable import TDNSCrypto

// DNSSEC key material. Independent checks: the Go KDC's key in Tests/Vectors/distribution.json
// (`plaintext_info`), keys made by `openssl genpkey`, signatures checked by `openssl`, and the
// real proof: BIND's `dnssec-signzone`/`dnssec-verify` and Knot's `keymgr import-bind` reading the
// `.private` files this library writes.

// MARK: - helpers

private enum DNSSECTool {
    static let searchPath: [String] = {
        let env = ProcessInfo.processInfo.environment["PATH"] ?? ""
        return env.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    }()

    static func path(_ name: String) -> String? {
        searchPath.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
        var output: String { stdout + stderr }
    }

    /// Runs a tool to completion; output goes through files so a chatty tool cannot block.
    static func run(_ name: String, _ arguments: [String], in directory: URL) throws -> Result {
        guard let executable = path(name) else {
            throw VectorError("\(name) not found in PATH or /usr/sbin: install openssl, bind9-utils, bind9-dnsutils and knot")
        }
        let id = UUID().uuidString
        let outURL = directory.appendingPathComponent(".out-\(id)")
        let errURL = directory.appendingPathComponent(".err-\(id)")
        guard FileManager.default.createFile(atPath: outURL.path, contents: nil),
              FileManager.default.createFile(atPath: errURL.path, contents: nil)
        else { throw VectorError("cannot create output files in \(directory.path)") }
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.standardOutput = out
        process.standardError = err
        try process.run()
        process.waitUntilExit()
        try out.close()
        try err.close()
        let stdout = String(decoding: (try? Data(contentsOf: outURL)) ?? Data(), as: UTF8.self)
        let stderr = String(decoding: (try? Data(contentsOf: errURL)) ?? Data(), as: UTF8.self)
        try? FileManager.default.removeItem(at: outURL)
        try? FileManager.default.removeItem(at: errURL)
        return Result(status: process.terminationStatus, stdout: stdout, stderr: stderr)
    }

    /// Runs a tool and fails (throws) unless it exits 0.
    @discardableResult
    static func check(_ name: String, _ arguments: [String], in directory: URL) throws -> Result {
        let result = try run(name, arguments, in: directory)
        guard result.status == 0 else {
            throw VectorError("\(name) \(arguments.joined(separator: " ")) exited \(result.status):\n\(result.output)")
        }
        return result
    }
}

/// A fresh directory, removed by the caller's `defer`.
private func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("tdns-dnssec-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

private func readBytes(_ url: URL) throws -> [UInt8] { Array(try Data(contentsOf: url)) }

/// `openssl genpkey` into `dir/name`, returning the PEM bytes.
private func opensslKey(_ options: [String], name: String, in dir: URL) throws -> [UInt8] {
    try DNSSECTool.check("openssl", ["genpkey"] + options + ["-out", name], in: dir)
    return try readBytes(dir.appendingPathComponent(name))
}

enum DNSSECOpenSSLKeyKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case rsa2048, p256, p384, ed25519

    var options: [String] {
        switch self {
        case .rsa2048: ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
        case .p256: ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
        case .p384: ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]
        case .ed25519: ["-algorithm", "ED25519"]
        }
    }

    var algorithm: DNSSECAlgorithm {
        switch self {
        case .rsa2048: .rsasha256
        case .p256: .ecdsap256sha256
        case .p384: .ecdsap384sha384
        case .ed25519: .ed25519
        }
    }

    var testDescription: String { rawValue }
}

/// The vector KSK of the Go KDC (P-256, example.com., tag 23719).
private struct VectorKSK {
    let pem: [UInt8]
    let rr: String
    let keyTag: UInt16
    let derivation: String

    static func load() throws -> VectorKSK {
        let info = try VectorFiles.load("distribution.json").object("plaintext_info")
        guard let tag = info["key_tag"] as? Int, let tag16 = UInt16(exactly: tag) else {
            throw VectorError("plaintext_info.key_tag missing")
        }
        return VectorKSK(
            pem: Array(try info.string("private_key_pem").utf8), rr: try info.string("dnskey_rr"),
            keyTag: tag16, derivation: try info.string("dnssec_key_derivation"))
    }

    /// (flags, protocol, algorithm, public key) of the presentation-format DNSKEY RR.
    var rdata: (flags: UInt16, protocol: UInt8, algorithm: UInt8, publicKey: [UInt8]) {
        get throws {
            let fields = rr.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard fields.count >= 8, fields[3] == "DNSKEY", let flags = UInt16(fields[4]),
                  let proto = UInt8(fields[5]), let alg = UInt8(fields[6])
            else { throw VectorError("cannot read \(rr)") }
            return (flags, proto, alg, try base64Bytes(fields[7...].joined()))
        }
    }
}

/// A `.key` file as `dnssec-keygen` writes it (comment header, then the DNSKEY RR).
private func bindPublicKeyFile(zone: String, flags: UInt16, key: DNSSECPrivateKey, time: Int64) -> String {
    let tag = key.keyTag(flags: flags)
    let stamp = DNSTime.format(time)
    let kind = flags & 1 == 1 ? "key-signing" : "zone-signing"
    return """
        ; This is a \(kind) key, keyid \(tag), for \(zone)
        ; Created: \(stamp)
        ; Publish: \(stamp)
        ; Activate: \(stamp)
        \(zone) 3600 IN DNSKEY \(flags) 3 \(key.algorithm.rawValue) \(Base64.encode(key.dnskeyPublicKey))

        """
}

/// Writes `K<zone>+<alg>+<tag>.{key,private}` and returns the base name.
@discardableResult
private func writeBINDKeyPair(_ key: DNSSECPrivateKey, zone: String, flags: UInt16, time: Int64, in dir: URL) throws -> String {
    let tag = key.keyTag(flags: flags)
    let alg = String(key.algorithm.rawValue)
    let base = "K\(zone)+\(String(repeating: "0", count: 3 - alg.count))\(alg)+\(String(format: "%05d", Int(tag)))"
    var secret = key.bindPrivateKeyFile(created: time, publish: time, activate: time)
    defer { zeroize(&secret) }
    let privateURL = dir.appendingPathComponent("\(base).private")
    guard FileManager.default.createFile(
        atPath: privateURL.path, contents: Data(secret), attributes: [.posixPermissions: 0o600])
    else { throw VectorError("cannot write \(privateURL.path)") }
    try Data(bindPublicKeyFile(zone: zone, flags: flags, key: key, time: time).utf8)
        .write(to: dir.appendingPathComponent("\(base).key"))
    return base
}

private let tinyZone = """
    $TTL 3600
    test.example. IN SOA ns1.test.example. hostmaster.test.example. 1 7200 3600 1209600 3600
    test.example. IN NS ns1.test.example.
    ns1.test.example. IN A 192.0.2.1
    www.test.example. IN A 192.0.2.2
    www.test.example. IN TXT "signed by a key from libtdnskrs"

    """

private func flipped(_ bytes: [UInt8], at index: Int) -> [UInt8] {
    var copy = bytes
    copy[index] ^= 0x01
    return copy
}

private func pem(_ der: [UInt8], label: String = "PRIVATE KEY") -> [UInt8] {
    DNSSECPEM.encode(label: label, der: der)
}

// MARK: - the Go KDC vector

@Suite("DNSSEC keys: Go KDC vector")
struct DNSSECVectorTests {
    @Test("the KDC's P-256 KSK parses; DNSKEY field and key tag match the Go output")
    func vectorKey() throws {
        let vector = try VectorKSK.load()
        let rdata = try vector.rdata
        let key = try DNSSECPrivateKey(pkcs8PEM: vector.pem, algorithm: .ecdsap256sha256)
        #expect(key.algorithm == .ecdsap256sha256)
        #expect(rdata.algorithm == 13 && rdata.flags == 257 && rdata.protocol == 3)
        #expect(key.dnskeyPublicKey == rdata.publicKey)
        #expect(key.keyTag(flags: 257) == 23719)
        #expect(vector.keyTag == 23719)
        #expect(dnssecKeyTag(flags: 257, protocol: 3, algorithm: 13, publicKey: rdata.publicKey) == 23719)
        #expect(try key.publicKey().keyTag(flags: 257) == 23719)
        #expect(key.rsaModulusBits == nil)
    }

    @Test("pkcs8PEM() reproduces the Go PEM byte for byte")
    func vectorPEMRoundTrip() throws {
        let vector = try VectorKSK.load()
        let key = try DNSSECPrivateKey(pkcs8PEM: vector.pem, algorithm: .ecdsap256sha256)
        #expect(key.pkcs8PEM() == vector.pem)
    }

    @Test("the BIND .private of the vector key, exactly")
    func vectorBINDFile() throws {
        let vector = try VectorKSK.load()
        let key = try DNSSECPrivateKey(pkcs8PEM: vector.pem, algorithm: .ecdsap256sha256)
        // "P-256 scalar d = SHA-256(\"gopeer-vectors/v1/dnssec/example.com/ksk\")"
        #expect(vector.derivation.contains("gopeer-vectors/v1/dnssec/example.com/ksk"))
        let d = Array(SHA256.hash(data: Array("gopeer-vectors/v1/dnssec/example.com/ksk".utf8)))
        let text = String(decoding: key.bindPrivateKeyFile(created: 1_700_000_000, publish: 1_700_003_600, activate: nil), as: UTF8.self)
        #expect(text == """
            Private-key-format: v1.3
            Algorithm: 13 (ECDSAP256SHA256)
            PrivateKey: \(Base64.encode(d))
            Created: 20231114221320
            Publish: 20231114231320

            """)
    }

    @Test("the vector key refuses every other algorithm with .policy")
    func vectorWrongAlgorithm() throws {
        let vector = try VectorKSK.load()
        for alg: UInt8 in [8, 10, 14, 15, 5, 16, 0, 255] {
            expectCode(.policy, "algorithm \(alg)") { _ = try DNSSECPrivateKey(pkcs8PEM: vector.pem, algorithm: DNSSECAlgorithm(alg)) }
        }
    }

    @Test("sign and verify with the vector key; a flipped byte fails")
    func vectorSignVerify() throws {
        let vector = try VectorKSK.load()
        let key = try DNSSECPrivateKey(pkcs8PEM: vector.pem, algorithm: .ecdsap256sha256)
        let verifier = try DNSSECPublicKey(algorithm: .ecdsap256sha256, dnskeyPublicKey: try vector.rdata.publicKey)
        let data = Array("SIG(0) RDATA ‖ message".utf8)
        let signature = try key.sign(data)
        #expect(signature.count == 64)
        #expect(verifier.verify(signature: signature, data: data))
        #expect(!verifier.verify(signature: flipped(signature, at: 5), data: data))
        #expect(!verifier.verify(signature: flipped(signature, at: 40), data: data))
        #expect(!verifier.verify(signature: signature, data: flipped(data, at: 0)))
    }
}

// MARK: - keys from openssl

@Suite("DNSSEC keys: openssl")
struct DNSSECOpenSSLTests {
    @Test("openssl genpkey keys parse; DNSKEY field matches openssl's public key; PKCS#8 re-encodes identically",
          arguments: DNSSECOpenSSLKeyKind.allCases)
    func opensslKeys(kind: DNSSECOpenSSLKeyKind) throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let pemBytes = try opensslKey(kind.options, name: "key.pem", in: dir)
        let key = try DNSSECPrivateKey(pkcs8PEM: pemBytes, algorithm: kind.algorithm)
        #expect(key.pkcs8PEM() == pemBytes)

        switch kind {
        case .rsa2048:
            let modulusLine = try DNSSECTool.check("openssl", ["rsa", "-in", "key.pem", "-noout", "-modulus"], in: dir).stdout
            let hex = modulusLine.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "Modulus=", with: "")
            let modulus = try hexBytes(hex.lowercased())
            #expect(key.dnskeyPublicKey == [3, 0x01, 0x00, 0x01] + modulus)
            #expect(key.rsaModulusBits == 2048)
            // The same key is fine for RSASHA512, and signing is refused.
            let sha512 = try DNSSECPrivateKey(pkcs8PEM: pemBytes, algorithm: .rsasha512)
            #expect(sha512.dnskeyPublicKey == key.dnskeyPublicKey)
            expectCode(.policy) { _ = try key.sign([1, 2, 3]) }
            expectCode(.policy) { _ = try key.publicKey() }
        default:
            try DNSSECTool.check("openssl", ["pkey", "-in", "key.pem", "-pubout", "-outform", "DER", "-out", "pub.der"], in: dir)
            let spki = try readBytes(dir.appendingPathComponent("pub.der"))
            #expect(Array(spki.suffix(key.dnskeyPublicKey.count)) == key.dnskeyPublicKey)
        }
        for other in [DNSSECAlgorithm.rsasha256, .ecdsap256sha256, .ecdsap384sha384, .ed25519] where other != kind.algorithm {
            if kind == .rsa2048 && other.isRSA { continue }
            expectCode(.policy, "\(kind) as \(other)") { _ = try DNSSECPrivateKey(pkcs8PEM: pemBytes, algorithm: other) }
        }
    }

    @Test("our signatures verify with openssl; openssl's verify with DNSSECPublicKey",
          arguments: [DNSSECOpenSSLKeyKind.p256, .p384, .ed25519])
    func signaturesInterop(kind: DNSSECOpenSSLKeyKind) throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = try DNSSECPrivateKey.generate(algorithm: kind.algorithm)
        var exported = key.pkcs8PEM()
        defer { zeroize(&exported) }
        try Data(exported).write(to: dir.appendingPathComponent("key.pem"))
        try DNSSECTool.check("openssl", ["pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem"], in: dir)
        let data = Array("RRSIG RDATA ‖ canonical RRset".utf8)
        try Data(data).write(to: dir.appendingPathComponent("data"))

        // Ours → openssl.
        let signature = try key.sign(data)
        let digest = kind == .p384 ? "-sha384" : "-sha256"
        switch kind {
        case .p256:
            try Data(try P256.Signing.ECDSASignature(rawRepresentation: signature).derRepresentation)
                .write(to: dir.appendingPathComponent("sig"))
        case .p384:
            try Data(try P384.Signing.ECDSASignature(rawRepresentation: signature).derRepresentation)
                .write(to: dir.appendingPathComponent("sig"))
        default:
            try Data(signature).write(to: dir.appendingPathComponent("sig"))
        }
        if kind == .ed25519 {
            try DNSSECTool.check("openssl", ["pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "data", "-sigfile", "sig"], in: dir)
        } else {
            try DNSSECTool.check("openssl", ["dgst", digest, "-verify", "pub.pem", "-signature", "sig", "data"], in: dir)
        }

        // openssl → ours.
        if kind == .ed25519 {
            try DNSSECTool.check("openssl", ["pkeyutl", "-sign", "-inkey", "key.pem", "-rawin", "-in", "data", "-out", "osig"], in: dir)
        } else {
            try DNSSECTool.check("openssl", ["dgst", digest, "-sign", "key.pem", "-out", "osig", "data"], in: dir)
        }
        let osig = try readBytes(dir.appendingPathComponent("osig"))
        let raw: [UInt8] = switch kind {
        case .p256: Array(try P256.Signing.ECDSASignature(derRepresentation: osig).rawRepresentation)
        case .p384: Array(try P384.Signing.ECDSASignature(derRepresentation: osig).rawRepresentation)
        default: osig
        }
        let verifier = try key.publicKey()
        #expect(verifier.verify(signature: raw, data: data))
        #expect(!verifier.verify(signature: flipped(raw, at: raw.count - 1), data: data))
    }
}

// MARK: - BIND and Knot read what we write

@Suite("DNSSEC keys: BIND and Knot")
struct DNSSECBINDTests {
    @Test("dnssec-signzone signs with our .private files and dnssec-verify accepts the zone",
          arguments: [DNSSECAlgorithm.rsasha256, .rsasha512, .ecdsap256sha256, .ecdsap384sha384, .ed25519])
    func signzoneAndVerify(algorithm: DNSSECAlgorithm) throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let zone = "test.example."
        let time = Int64(Date().timeIntervalSince1970) - 3600

        // KSK from openssl (through PKCS#8 PEM, as the KDC sends it); ZSK from openssl for RSA,
        // from generate() otherwise.
        let options: [String] = switch algorithm {
        case .ecdsap256sha256: DNSSECOpenSSLKeyKind.p256.options
        case .ecdsap384sha384: DNSSECOpenSSLKeyKind.p384.options
        case .ed25519: DNSSECOpenSSLKeyKind.ed25519.options
        default: DNSSECOpenSSLKeyKind.rsa2048.options
        }
        let ksk = try DNSSECPrivateKey(pkcs8PEM: try opensslKey(options, name: "ksk.pem", in: dir), algorithm: algorithm)
        let zsk = algorithm.isRSA
            ? try DNSSECPrivateKey(pkcs8PEM: try opensslKey(options, name: "zsk.pem", in: dir), algorithm: algorithm)
            : try DNSSECPrivateKey.generate(algorithm: algorithm)
        let kskBase = try writeBINDKeyPair(ksk, zone: zone, flags: 257, time: time, in: dir)
        let zskBase = try writeBINDKeyPair(zsk, zone: zone, flags: 256, time: time, in: dir)
        try Data(tinyZone.utf8).write(to: dir.appendingPathComponent("zone"))

        let signed = try DNSSECTool.check("dnssec-signzone", ["-K", dir.path, "-o", zone, "-S", "-f", "out", "zone"], in: dir)
        #expect(signed.output.contains("KSKs: 1 active"), "\(signed.output)")
        #expect(signed.output.contains("ZSKs: 1 active"), "\(signed.output)")
        let verified = try DNSSECTool.check("dnssec-verify", ["-o", zone, "out"], in: dir)
        #expect(verified.output.contains("Zone fully signed"), "\(verified.output)")

        // The signed zone carries RRSIGs under both key tags.
        let out = String(decoding: try readBytes(dir.appendingPathComponent("out")), as: UTF8.self)
        #expect(out.contains(" \(ksk.keyTag(flags: 257)) \(zone)"))
        #expect(out.contains(" \(zsk.keyTag(flags: 256)) \(zone)"))

        // Knot imports the same files (keymgr works on the KASP database, no knotd needed).
        let kasp = dir.appendingPathComponent("kasp")
        try FileManager.default.createDirectory(at: kasp, withIntermediateDirectories: true)
        let conf = """
            template:
              - id: default
                storage: "\(dir.path)"
                kasp-db: "\(kasp.path)"
            zone:
              - domain: \(zone)

            """
        try Data(conf.utf8).write(to: dir.appendingPathComponent("knot.conf"))
        for base in [kskBase, zskBase] {
            let imported = try DNSSECTool.check("keymgr", ["-c", "knot.conf", zone, "import-bind", "\(base).private"], in: dir)
            #expect(imported.stdout.contains("OK"), "\(imported.output)")
        }
        let list = try DNSSECTool.check("keymgr", ["-c", "knot.conf", zone, "list"], in: dir).stdout
        #expect(list.contains(" \(ksk.keyTag(flags: 257)) KSK \(algorithm)"), "\(list)")
        #expect(list.contains(" \(zsk.keyTag(flags: 256)) ZSK \(algorithm)"), "\(list)")
    }

    @Test(".private layout: the same lines, in the same order, as dnssec-keygen writes",
          arguments: [DNSSECAlgorithm.rsasha256, .ecdsap256sha256, .ecdsap384sha384, .ed25519])
    func layoutMatchesKeygen(algorithm: DNSSECAlgorithm) throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var args = ["-q", "-K", dir.path, "-a", algorithm.description, "-P", "20300101000000", "-A", "20300102000000"]
        if algorithm.isRSA { args += ["-b", "1024"] }
        let base = try DNSSECTool.check("dnssec-keygen", args + ["test.example."], in: dir)
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let theirs = String(decoding: try readBytes(dir.appendingPathComponent("\(base).private")), as: UTF8.self)

        let key: DNSSECPrivateKey = algorithm.isRSA
            ? try DNSSECPrivateKey(pkcs8PEM: try opensslKey(["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"], name: "k.pem", in: dir), algorithm: algorithm)
            : try DNSSECPrivateKey.generate(algorithm: algorithm)
        let ours = String(decoding: key.bindPrivateKeyFile(created: 1_893_456_000, publish: 1_893_456_000, activate: 1_893_542_400), as: UTF8.self)

        func shape(_ text: String) -> [String] {
            text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
                let parts = line.split(separator: ":", maxSplits: 1)
                // Keep values that are not key material.
                if ["Private-key-format", "Algorithm", "Publish", "Activate"].contains(String(parts.first ?? "")) { return String(line) }
                return String(parts.first ?? "")
            }
        }
        #expect(shape(ours) == shape(theirs), "ours:\n\(ours)\ntheirs:\n\(theirs)")
        #expect(ours.hasSuffix("\n") && theirs.hasSuffix("\n"))
        // ECDSA scalars and Ed25519 seeds are written at full length (32/48 octets), as BIND
        // 9.18 writes them (older BIND trimmed leading zero octets; both forms are read back).
        if !algorithm.isRSA {
            let length = algorithm == .ecdsap384sha384 ? 48 : 32
            let line = ours.split(separator: "\n").first { $0.hasPrefix("PrivateKey: ") }
            #expect(line.map { try? base64Bytes(String($0.dropFirst(12))) }??.count == length)
        }
    }

    @Test("key tags agree with dnssec-keygen's file names",
          arguments: [DNSSECAlgorithm.rsasha256, .ecdsap256sha256, .ecdsap384sha384, .ed25519])
    func keyTagsMatchBIND(algorithm: DNSSECAlgorithm) throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for ksk in [true, false] {
            var args = ["-q", "-K", dir.path, "-a", algorithm.description]
            if algorithm.isRSA { args += ["-b", "1024"] }
            if ksk { args += ["-f", "KSK"] }
            let base = try DNSSECTool.check("dnssec-keygen", args + ["tag.example."], in: dir)
                .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            guard let tagText = base.split(separator: "+").last, let expected = UInt16(tagText) else {
                Issue.record("unexpected key name \(base)")
                continue
            }
            let text = String(decoding: try readBytes(dir.appendingPathComponent("\(base).key")), as: UTF8.self)
            guard let rr = text.split(separator: "\n").first(where: { !$0.hasPrefix(";") }) else {
                Issue.record("no RR in \(base).key")
                continue
            }
            let fields = rr.split(separator: " ").map(String.init)
            // owner IN DNSKEY flags 3 alg b64 (b64 split into several tokens)
            guard fields.count >= 7, let flags = UInt16(fields[3]), let alg = UInt8(fields[5]) else {
                Issue.record("cannot read \(rr)")
                continue
            }
            let publicKey = try base64Bytes(fields[6...].joined())
            #expect(flags == (ksk ? 257 : 256))
            #expect(dnssecKeyTag(flags: flags, protocol: 3, algorithm: alg, publicKey: publicKey) == expected)
            if !algorithm.isRSA {
                let verifier = try DNSSECPublicKey(algorithm: algorithm, dnskeyPublicKey: publicKey)
                #expect(verifier.keyTag(flags: flags) == expected)
            }
        }
    }
}

// MARK: - refusals and round trips

@Suite("DNSSEC keys: refusals")
struct DNSSECRefusalTests {
    @Test("truncated or damaged DER is .malformed")
    func truncatedDER() throws {
        let vector = try VectorKSK.load()
        let der = try DNSSECPEM.decodePrivateKey(vector.pem)
        for cut in [1, 2, 10, der.count - 1] {
            let short = Array(der.prefix(der.count - cut))
            expectCode(.malformed, "cut \(cut)") { _ = try DNSSECPrivateKey(pkcs8PEM: pem(short), algorithm: .ecdsap256sha256) }
            expectCode(.malformed, "DER cut \(cut)") { _ = try DNSSECPrivateKey(pkcs8DER: short, algorithm: .ecdsap256sha256) }
        }
        expectCode(.malformed, "trailing byte") { _ = try DNSSECPrivateKey(pkcs8DER: der + [0], algorithm: .ecdsap256sha256) }
        // The last byte is part of the embedded public point: it no longer matches the scalar.
        expectCode(.malformed, "wrong embedded public key") {
            _ = try DNSSECPrivateKey(pkcs8DER: flipped(der, at: der.count - 1), algorithm: .ecdsap256sha256)
        }
        // PKCS#8 version 2 does not exist (0 and 1 do).
        var version2 = der
        version2[5] = 2
        expectCode(.malformed, "version") { _ = try DNSSECPrivateKey(pkcs8DER: version2, algorithm: .ecdsap256sha256) }
    }

    @Test("zero and out-of-range scalars are .malformed")
    func badScalars() {
        let zero = DNSSECPKCS8.encodeEC(curve: .p256, scalar: [UInt8](repeating: 0, count: 32), uncompressedPoint: [4] + [UInt8](repeating: 1, count: 64))
        expectCode(.malformed) { _ = try DNSSECPrivateKey(pkcs8DER: zero, algorithm: .ecdsap256sha256) }
        let big = DNSSECPKCS8.encodeEC(curve: .p256, scalar: [UInt8](repeating: 0xff, count: 32), uncompressedPoint: [4] + [UInt8](repeating: 1, count: 64))
        expectCode(.malformed) { _ = try DNSSECPrivateKey(pkcs8DER: big, algorithm: .ecdsap256sha256) }
        let shortSeed: [UInt8] = [0x30, 0x2d, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x21, 0x04, 0x1f]
            + [UInt8](repeating: 7, count: 31)
        expectCode(.malformed) { _ = try DNSSECPrivateKey(pkcs8DER: shortSeed, algorithm: .ed25519) }
    }

    @Test("PEM must be exactly one PRIVATE KEY block")
    func strictPEM() throws {
        let vector = try VectorKSK.load()
        let good = vector.pem
        func check(_ code: TDNSError.Code, _ text: [UInt8], _ comment: Comment) {
            expectCode(code, comment) { _ = try DNSSECPrivateKey(pkcs8PEM: text, algorithm: .ecdsap256sha256) }
        }
        check(.malformed, good + good, "two PEM blocks")
        check(.malformed, good + Array("-----BEGIN PRIVATE KEY-----\n".utf8), "a second BEGIN")
        check(.malformed, Array("Key for example.com\n".utf8) + good, "text before")
        check(.malformed, good + Array("trailer\n".utf8), "text after")
        check(.malformed, [], "empty")
        check(.malformed, Array("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n".utf8), "empty block")
        check(.malformed, Array(good.dropLast(26)), "no END line")
        var garbage = good
        garbage[40] = UInt8(ascii: "!")
        check(.malformed, garbage, "garbage in the base64")
        var blankInside = good
        blankInside.insert(UInt8(ascii: "\n"), at: 28)
        check(.malformed, blankInside, "blank line inside")
        let text = String(decoding: good, as: UTF8.self)
        check(.malformed, Array(text.replacingOccurrences(of: "PRIVATE KEY", with: "EC PRIVATE KEY").utf8), "traditional EC label")
        check(.malformed, Array(text.replacingOccurrences(of: "-----END PRIVATE KEY-----", with: "-----END RSA PRIVATE KEY-----").utf8), "END mismatch")
        check(.malformed, Array(text.replacingOccurrences(of: "\n-----END", with: "Proc-Type: 4,ENCRYPTED\n-----END").utf8), "header")
        check(.malformed, Base64.encodeBytes(good), "base64 of the PEM (the distribution form) is not PEM")
        check(.tooBig, good + [UInt8](repeating: 0x0a, count: CryptoLimits.maxKeyText), "over 16 KiB")
        // Tolerated: CRLF line ends and surrounding blank lines.
        let crlf = Array(("\n\n" + text.replacingOccurrences(of: "\n", with: "\r\n") + "\n").utf8)
        let key = try DNSSECPrivateKey(pkcs8PEM: crlf, algorithm: .ecdsap256sha256)
        #expect(key.keyTag(flags: 257) == 23719)
    }

    @Test("refused key kinds: encrypted, RSA 512, secp256k1, P-521, Ed448")
    func refusedKinds() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try opensslKey(DNSSECOpenSSLKeyKind.p256.options, name: "p256.pem", in: dir)
        try DNSSECTool.check("openssl", ["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout", "pass:secret", "-in", "p256.pem", "-out", "enc.pem"], in: dir)
        let encrypted = try readBytes(dir.appendingPathComponent("enc.pem"))
        expectCode(.policy, "ENCRYPTED PRIVATE KEY") { _ = try DNSSECPrivateKey(pkcs8PEM: encrypted, algorithm: .ecdsap256sha256) }

        let rsa512 = try opensslKey(["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:512"], name: "r512.pem", in: dir)
        expectCode(.policy, "RSA 512") { _ = try DNSSECPrivateKey(pkcs8PEM: rsa512, algorithm: .rsasha256) }

        let k1 = try opensslKey(["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1"], name: "k1.pem", in: dir)
        expectCode(.policy, "secp256k1") { _ = try DNSSECPrivateKey(pkcs8PEM: k1, algorithm: .ecdsap256sha256) }

        let p521 = try opensslKey(["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"], name: "p521.pem", in: dir)
        expectCode(.policy, "P-521") { _ = try DNSSECPrivateKey(pkcs8PEM: p521, algorithm: .ecdsap384sha384) }

        let ed448 = try opensslKey(["-algorithm", "ED448"], name: "ed448.pem", in: dir)
        expectCode(.policy, "Ed448") { _ = try DNSSECPrivateKey(pkcs8PEM: ed448, algorithm: DNSSECAlgorithm(16)) }
        expectCode(.policy, "Ed448 as 15") { _ = try DNSSECPrivateKey(pkcs8PEM: ed448, algorithm: .ed25519) }

        let x25519 = try opensslKey(["-algorithm", "X25519"], name: "x25519.pem", in: dir)
        expectCode(.policy, "X25519") { _ = try DNSSECPrivateKey(pkcs8PEM: x25519, algorithm: .ed25519) }
    }

    @Test("generation, signing and DNSKEY parsing refusals")
    func otherRefusals() {
        expectCode(.policy) { _ = try DNSSECPrivateKey.generate(algorithm: .rsasha256) }
        expectCode(.policy) { _ = try DNSSECPrivateKey.generate(algorithm: DNSSECAlgorithm(16)) }
        expectCode(.policy) { _ = try DNSSECPublicKey(algorithm: .rsasha256, dnskeyPublicKey: [3, 1, 0, 1] + [UInt8](repeating: 0xc3, count: 256)) }
        expectCode(.malformed) { _ = try DNSSECPublicKey(algorithm: .ecdsap256sha256, dnskeyPublicKey: [UInt8](repeating: 1, count: 63)) }
        expectCode(.malformed) { _ = try DNSSECPublicKey(algorithm: .ecdsap256sha256, dnskeyPublicKey: [UInt8](repeating: 1, count: 64)) }
        expectCode(.malformed) { _ = try DNSSECPublicKey(algorithm: .ecdsap384sha384, dnskeyPublicKey: [UInt8](repeating: 1, count: 96)) }
        expectCode(.malformed) { _ = try DNSSECPublicKey(algorithm: .ed25519, dnskeyPublicKey: [UInt8](repeating: 1, count: 33)) }
    }

    @Test("sign/verify round trips; flipped bytes, wrong keys and wrong lengths fail",
          arguments: [DNSSECAlgorithm.ecdsap256sha256, .ecdsap384sha384, .ed25519])
    func roundTrips(algorithm: DNSSECAlgorithm) throws {
        let key = try DNSSECPrivateKey.generate(algorithm: algorithm)
        let other = try DNSSECPrivateKey.generate(algorithm: algorithm)
        let verifier = try DNSSECPublicKey(algorithm: algorithm, dnskeyPublicKey: key.dnskeyPublicKey)
        let expectedLength = algorithm == .ecdsap384sha384 ? 96 : 64
        #expect(key.dnskeyPublicKey.count == (algorithm == .ed25519 ? 32 : expectedLength))
        let data = Array("data".utf8)
        let signature = try key.sign(data)
        #expect(signature.count == expectedLength)
        #expect(verifier.verify(signature: signature, data: data))
        for i in [0, signature.count / 2, signature.count - 1] {
            #expect(!verifier.verify(signature: flipped(signature, at: i), data: data))
        }
        #expect(!verifier.verify(signature: signature, data: data + [0]))
        #expect(!verifier.verify(signature: Array(signature.dropLast()), data: data))
        #expect(!verifier.verify(signature: signature + [0], data: data))
        #expect(!verifier.verify(signature: [], data: data))
        #expect(!(try other.publicKey()).verify(signature: signature, data: data))

        // PKCS#8 round trip keeps the key.
        var exported = key.pkcs8PEM()
        defer { zeroize(&exported) }
        let reparsed = try DNSSECPrivateKey(pkcs8PEM: exported, algorithm: algorithm)
        #expect(reparsed.dnskeyPublicKey == key.dnskeyPublicKey)
        #expect(verifier.verify(signature: try reparsed.sign(data), data: data))
        #expect(reparsed.pkcs8DER() == key.pkcs8DER())
        // Exporting does not disturb the key (regression: clearing swift-crypto's Ed25519 seed
        // Data once wiped the key itself).
        #expect(key.bindPrivateKeyFile(created: 0, publish: nil, activate: nil)
            == key.bindPrivateKeyFile(created: 0, publish: nil, activate: nil))
        #expect(key.pkcs8PEM() == exported)
        #expect(verifier.verify(signature: try key.sign(data), data: data))
    }
}

// MARK: - small pieces

@Suite("DNSSEC keys: small pieces")
struct DNSSECSmallTests {
    @Test("algorithm numbers and BIND mnemonics")
    func algorithms() {
        #expect(DNSSECAlgorithm.rsasha256.rawValue == 8)
        #expect(DNSSECAlgorithm.rsasha512.rawValue == 10)
        #expect(DNSSECAlgorithm.ecdsap256sha256.rawValue == 13)
        #expect(DNSSECAlgorithm.ecdsap384sha384.rawValue == 14)
        #expect(DNSSECAlgorithm.ed25519.rawValue == 15)
        #expect(DNSSECAlgorithm.ecdsap256sha256.mnemonic == "ECDSAP256SHA256")
        #expect(DNSSECAlgorithm.ed25519.description == "ED25519")
        #expect(DNSSECAlgorithm(mnemonic: "ecdsap384sha384") == .ecdsap384sha384)
        #expect(DNSSECAlgorithm(mnemonic: "RSASHA512") == .rsasha512)
        #expect(DNSSECAlgorithm(mnemonic: "nope") == nil)
        #expect(DNSSECAlgorithm(200).mnemonic == nil)
        #expect(DNSSECAlgorithm(200).description == "200")
    }

    @Test("RFC 4034 Appendix B key tag, including the RSA/MD5 rule and odd lengths")
    func keyTags() {
        // Algorithm 1: bits 8–23 of the modulus' low end.
        #expect(dnssecKeyTag(flags: 256, protocol: 3, algorithm: 1, publicKey: [1, 3, 0xab, 0xcd, 0xef]) == 0xabcd)
        #expect(dnssecKeyTag(flags: 256, protocol: 3, algorithm: 1, publicKey: [1, 2]) == 0)
        // Hand sum: 0x0100 + 0x0300 + 0x000f + 0xff00 + 0x00ff = 0x1040e → 0x040e + 1 = 0x040f.
        #expect(dnssecKeyTag(flags: 256, protocol: 3, algorithm: 15, publicKey: [0xff, 0xff]) == 0x040f)
        // Odd length: the last octet is a high octet.
        #expect(dnssecKeyTag(flags: 0, protocol: 0, algorithm: 0, publicKey: [0x01]) == 0x0100)
        // Large input cannot overflow.
        _ = dnssecKeyTag(flags: 0xffff, protocol: 0xff, algorithm: 0xff, publicKey: [UInt8](repeating: 0xff, count: 200_000))
    }

    @Test("RFC 3110 public key encoding")
    func rfc3110() {
        #expect(rfc3110PublicKey(exponent: [1, 0, 1], modulus: [0xc0, 0x01]) == [3, 1, 0, 1, 0xc0, 0x01])
        let longExponent = [UInt8](repeating: 3, count: 300)
        #expect(Array(rfc3110PublicKey(exponent: longExponent, modulus: [0x81]).prefix(3)) == [0, 0x01, 0x2c])
    }
}
