import Foundation
import Testing
import TDNSCore

@testable import TDNSCrypto

// The BIND `.private` reader (DNSSECBINDPrivateKey.swift). Independent checks: files written by
// BIND's own `dnssec-keygen` (run here, and one copy of each algorithm kept below), whose
// `.key` files give the DNSKEY public key our parser must derive; then round trips through our
// writer, and the refusals.

/// Files dnssec-keygen 9.18 wrote for `example.org` (throw-away test keys) and the public keys
/// of their `.key` files.
private let keygenFixtures: [(alg: UInt8, tag: UInt16, flags: UInt16, privateFile: String, dnskey: String)] = [
    (8, 24681, 256, """
    Private-key-format: v1.3
    Algorithm: 8 (RSASHA256)
    Modulus: zZEzkaWe20/2DyjxfCs7RKm8AGsjtwPmLN8b9PfAmlf19osxot9ufwIkgTPfJOOt0UdOCXazV/nF2HzBLkXNrXSE6ETLI+79gZIaYjMcRTaHZv64CVlRGhiuMZixgJCYBkiF1KGYNQmL5DwhCRnfSdDO21UG+AhPULCNEJ45bD0=
    PublicExponent: AQAB
    PrivateExponent: FOcW31B//rz6wD/hjka3GBxKSaCbWRjEZvuo1Bf9NbSMBi3RNkaR7chB/gFQR2f/XLBrdvri8acsPv8whYwDhdjdheA6aIogN5fndFuJvGMqMP1pyqqUuxxi//IYP6TLbGF+G1zKbs+KZVuYvF8R03DBfFH9Ri4vutxSMLGsq+E=
    Prime1: /GWoqR64BcUcb33wsB3xbdRv3ex+1wwkwTt5bqz2h5VospWNPBIVTOsbbNGiVpYavCo951y5no+GD9nSWQl1fw==
    Prime2: 0IBpLt7LAcbtRkwRgxETrCwyw5HC42gU8/K05SuAnyxdx+/I+bz/FbSSfaKv6cU+9lYNd77T8kflNY7JVs5UQw==
    Exponent1: AYCBXnBGXBJuNuOi+QlUlHi9Ka7smk8CMPwvns78sJXdB6MIMiFRayHDCgS9WJKQGiqOL8BHgoAMJi//pnP99Q==
    Exponent2: AQPO/0JoXI7aUtBF+YxYuyrP6HHKMA8uou1YghEPJDc0EagSI10PJMznNaNYFdw27T4H/MA6CeDdtcAHLNv+Pw==
    Coefficient: NJRxL+NF049TuG2AG7TK2/sf+VX9gQFQYmr3OPO1F200pmM9xJpCzQ22f1MsBUtbW05+59r3Dc+5InkfN4+z4A==
    Created: 20261129125142
    Publish: 20261129125142
    Activate: 20261129125142

    """, ""),
    (13, 3601, 256, """
    Private-key-format: v1.3
    Algorithm: 13 (ECDSAP256SHA256)
    PrivateKey: lUgy8UH0TMnmZr15L70DsJ3544QROY1jjbJkb8o/0zs=
    Created: 20261129125143
    Publish: 20261129125143
    Activate: 20261129125143

    """, "h8JnpM5r5FzPxXO9WOHlMqAkObIOMHnoq6OWeZUo8SwLYhbQijz7igao5pSHXSEhtmH9HXkaCxU279ZKNPUERw=="),
    (14, 29419, 256, """
    Private-key-format: v1.3
    Algorithm: 14 (ECDSAP384SHA384)
    PrivateKey: SiIhUo7c2HgbhRG2IgwpohjnzU+3QwEf0F8B1+eeVjqBh7UE+AykuK7cOp02Dsk4
    Created: 20261129125143
    Publish: 20261129125143
    Activate: 20261129125143

    """, ""),
    (15, 38410, 256, """
    Private-key-format: v1.3
    Algorithm: 15 (ED25519)
    PrivateKey: 2rY34NG+fJDjCnfR3zx/vCzAEn6a5Q8vHCkA1h/iQvI=
    Created: 20261129125143
    Publish: 20261129125143
    Activate: 20261129125143

    """, ""),
]

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

private func keygenPath() -> String? {
    ["/usr/sbin/dnssec-keygen", "/usr/bin/dnssec-keygen"].first { FileManager.default.isExecutableFile(atPath: $0) }
}

@Suite("BIND .private import")
struct BINDPrivateKeyTests {
    @Test("dnssec-keygen fixtures: algorithm and key tag as in the file name; the P-256 DNSKEY matches the .key file",
          arguments: keygenFixtures.indices)
    func fixtures(index: Int) throws {
        let f = keygenFixtures[index]
        let (key, metadata) = try DNSSECPrivateKey.parseBINDPrivateKey(bytes(f.privateFile))
        #expect(key.algorithm.rawValue == f.alg)
        #expect(key.keyTag(flags: f.flags) == f.tag)
        #expect(metadata.format == "v1.3")
        #expect(metadata.fields.map(\.name) == ["Created", "Publish", "Activate"])
        if !f.dnskey.isEmpty {
            #expect(Base64.encode(key.dnskeyPublicKey) == f.dnskey)
        }
    }

    @Test("files written by dnssec-keygen now: derived DNSKEY equals the .key file's, for 8, 10, 13, 14, 15",
          arguments: ["RSASHA256", "RSASHA512", "ECDSAP256SHA256", "ECDSAP384SHA384", "ED25519"])
    func liveKeygen(algorithm: String) throws {
        guard let keygen = keygenPath() else {
            Issue.record("dnssec-keygen not installed (bind9-utils)")
            return
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tdns-bindimport-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let process = Process()
        let pipe = Pipe()
        process.executableURL = URL(fileURLWithPath: keygen)
        var args = ["-q", "-K", dir.path, "-a", algorithm, "-f", "KSK"]
        if algorithm.hasPrefix("RSA") { args += ["-b", "1024"] }
        process.arguments = args + ["import.example."]
        process.standardOutput = pipe
        try process.run()
        let base = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let privateText = try Data(contentsOf: dir.appendingPathComponent(base + ".private"))
        let keyText = String(decoding: try Data(contentsOf: dir.appendingPathComponent(base + ".key")), as: UTF8.self)
        let key = try DNSSECPrivateKey(bindPrivateKey: Array(privateText))
        guard let rr = keyText.split(separator: "\n").first(where: { !$0.hasPrefix(";") }) else {
            Issue.record("no DNSKEY line in \(base).key")
            return
        }
        let fields = rr.split(separator: " ").map(String.init)
        #expect(fields.count >= 7)
        #expect(Base64.encode(key.dnskeyPublicKey) == fields[6...].joined())
        #expect(base.hasSuffix(String(format: "%05d", Int(key.keyTag(flags: 257)))))
    }

    @Test("our writer's output parses back to the same key (PKCS#8 identical)",
          arguments: [DNSSECAlgorithm.ecdsap256sha256, .ecdsap384sha384, .ed25519])
    func roundTrip(algorithm: DNSSECAlgorithm) throws {
        let key = try DNSSECPrivateKey.generate(algorithm: algorithm)
        let file = key.bindPrivateKeyFile(created: 1_800_000_000, publish: 1_800_000_000, activate: nil)
        let back = try DNSSECPrivateKey(bindPrivateKey: file)
        #expect(back.algorithm == algorithm)
        #expect(back.pkcs8DER() == key.pkcs8DER())
    }

    @Test("the RSA fixture re-emits the same .private key fields")
    func rsaRoundTrip() throws {
        let text = keygenFixtures[0].privateFile
        let key = try DNSSECPrivateKey(bindPrivateKey: bytes(text))
        #expect(key.rsaModulusBits == 1024)
        let written = String(decoding: key.bindPrivateKeyFile(created: 0, publish: nil, activate: nil), as: UTF8.self)
        for line in text.split(separator: "\n") where !["Created", "Publish", "Activate"].contains(where: line.hasPrefix) {
            #expect(written.contains(line))
        }
    }

    @Test("v1.2 and CRLF line ends are accepted; the algorithm number alone is enough")
    func variants() throws {
        let p256 = keygenFixtures[1].privateFile
        let v12 = p256.replacingOccurrences(of: "v1.3", with: "v1.2")
        #expect(try DNSSECPrivateKey.parseBINDPrivateKey(bytes(v12)).metadata.format == "v1.2")
        let crlf = p256.replacingOccurrences(of: "\n", with: "\r\n")
        #expect(try DNSSECPrivateKey(bindPrivateKey: bytes(crlf)).algorithm == .ecdsap256sha256)
        let bare = p256.replacingOccurrences(of: "13 (ECDSAP256SHA256)", with: "13")
        #expect(try DNSSECPrivateKey(bindPrivateKey: bytes(bare)).keyTag(flags: 256) == 3601)
    }

    static let refusals: [(String, String, TDNSError.Code)] = {
        let p256 = keygenFixtures[1].privateFile
        let ed = keygenFixtures[3].privateFile
        let rsa = keygenFixtures[0].privateFile
        return [
            ("format v1.4", p256.replacingOccurrences(of: "v1.3", with: "v1.4"), .malformed),
            ("no format line", String(p256.drop(while: { $0 != "\n" }).dropFirst()), .malformed),
            ("algorithm line second", p256.replacingOccurrences(of: "Algorithm", with: "Algorism"), .malformed),
            ("mnemonic contradicts number", p256.replacingOccurrences(of: "(ECDSAP256SHA256)", with: "(ED25519)"), .malformed),
            ("algorithm 7", p256.replacingOccurrences(of: "13 (ECDSAP256SHA256)", with: "7 (NSEC3RSASHA1)"), .policy),
            ("algorithm 16", ed.replacingOccurrences(of: "15 (ED25519)", with: "16 (ED448)"), .policy),
            ("duplicate PrivateKey", p256 + "PrivateKey: lUgy8UH0TMnmZr15L70DsJ3544QROY1jjbJkb8o/0zs=\n", .malformed),
            ("duplicate Created", p256 + "Created: 20261129125143\n", .malformed),
            ("unknown field", p256 + "Colour: blue\n", .malformed),
            ("HSM label", p256 + "Label: pkcs11:token=x\n", .policy),
            ("missing PrivateKey", p256.replacingOccurrences(of: "PrivateKey", with: "Publish2"), .malformed),
            ("base64 with a space", p256.replacingOccurrences(of: "lUgy8UH0", with: "lUgy 8UH0"), .malformed),
            ("non-canonical base64", ed.replacingOccurrences(of: "QvI=", with: "QvJ="), .malformed),
            ("Ed25519 key too short", ed.replacingOccurrences(of: "2rY34NG+", with: ""), .malformed),
            ("P-256 scalar too long", p256.replacingOccurrences(of: "lUgy8UH0TMnmZr15L70DsJ3544QROY1jjbJkb8o/0zs=", with: "AAAAlUgy8UH0TMnmZr15L70DsJ3544QROY1jjbJkb8o/0zs="), .malformed),
            ("RSA field on an EC key", p256 + "Modulus: AQAB\n", .malformed),
            ("RSA without Coefficient", rsa.split(separator: "\n").filter { !$0.hasPrefix("Coefficient") }.joined(separator: "\n"), .malformed),
            ("RSA with an even modulus", rsa.replacingOccurrences(of: "bD0=", with: "bDw="), .malformed),
            ("line without colon", p256 + "garbage\n", .malformed),
        ]
    }()

    @Test("refusals", arguments: refusals.indices)
    func refusal(index: Int) {
        let (name, text, code) = Self.refusals[index]
        do {
            _ = try DNSSECPrivateKey(bindPrivateKey: bytes(text))
            Issue.record("\(name): accepted")
        } catch {
            #expect(error.code == code, "\(name): \(error)")
        }
    }

    @Test("oversized input is .tooBig before parsing")
    func tooBig() {
        let text = [UInt8](repeating: 0x41, count: CryptoLimits.maxKeyText + 1)
        #expect(throws: TDNSError.self) { try DNSSECPrivateKey(bindPrivateKey: text) }
        do { _ = try DNSSECPrivateKey(bindPrivateKey: text) } catch { #expect(error.code == .tooBig) }
    }
}
