import TDNSCore
import TDNSTestSupport
import Testing

@testable import TDNSWire

/// SplitMix64: a fixed-seed generator, so failures reproduce.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Every parser must return or throw `.malformed`/`.tooBig` on any input — never trap. These
/// are a cheap, deterministic stand-in for a fuzzing run.
@Suite("Parsers on hostile input")
struct FuzzTests {
    private func mutate(_ seed: [UInt8], _ rng: inout SplitMix) -> [UInt8] {
        var b = seed
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            switch Int.random(in: 0..<4, using: &rng) {
            case 0 where !b.isEmpty: b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            case 1 where !b.isEmpty: b.remove(at: Int.random(in: 0..<b.count, using: &rng))
            case 2: b.insert(UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...b.count, using: &rng))
            default: if !b.isEmpty { b[Int.random(in: 0..<b.count, using: &rng)] ^= 0xC0 }
            }
        }
        return b
    }

    private func expectTyped(_ body: () throws -> Void) {
        do {
            try body()
        } catch let error as TDNSError {
            #expect(error.code == .malformed || error.code == .tooBig, "\(error)")
        } catch {
            Issue.record("untyped error \(error)")
        }
    }

    @Test func wireParsers() throws {
        var rng = SplitMix(state: 0x7D_4E_5A_11)
        let signed = try SIG0.append(
            signature: [1, 2, 3],
            sig: .sig0(algorithm: 15, keyTag: 1, signerName: try DNSName("kdc.example."), inception: 0, expiration: 1),
            to: try TDNSMessages.enrollmentUpdate(
                id: 1, controlZone: try DNSName("kdc.example."),
                chunk: try TDNSMessages.enrollmentChunk(ciphertext: [9, 9, 9]), chunkType: .chunk).serialize())
        let seeds: [[UInt8]] = [try sampleMessage().serialize(), signed]
        for i in 0..<4000 {
            let input = i % 10 == 0
                ? (0..<Int.random(in: 0..<80, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                : mutate(seeds[i % seeds.count], &rng)
            expectTyped {
                let m = try DNSMessage(wireEncoded: input, limits: .init(maxQuestions: 8, maxRecords: 64))
                _ = try? m.serialize()
                _ = try? SIG0.extract(from: m)
                _ = try? m.edns?.chunkOption()
                for rr in m.answers + m.authority + m.additional { _ = rr.presentation }
            }
            let rdata = Array(input.dropFirst(12))
            expectTyped { _ = try CHUNKRecord(rdata: rdata) }
            expectTyped { _ = try SIGRecord(rdata: rdata) }
            expectTyped { _ = try DNSKEYRecord(rdata: rdata) }
            expectTyped { _ = try ChunkOption(optionData: rdata) }
            expectTyped { _ = try DNSName(wireEncoded: rdata) }
        }
    }

    @Test func textParsers() throws {
        var rng = SplitMix(state: 0x5EED)
        let alphabet: [UInt8] = Array(##"0123456789abcdefJSONTYPE\#.@ "(;){}[]=+/-_:, "##.utf8) + [0x09, 0x0A, 0x00, 0xC3, 0xA9]
        let seeds = [
            "krs1.example.6a2f00c2.kdc.example.\t300\tIN\tCHUNK\t0 3 JSON 249f {\"a\":1}",
            "1.x.\t300\tIN\tCHUNK\t1 3 JSON \"\" QUFBQQ==",
            "example.com.\t3600\tIN\tDNSKEY\t257 3 13 n4PdnZzn76HdYWeB",
            "a\\.b\\065.c. 1 IN TYPE9 \\# 2 abcd",
        ]
        for i in 0..<4000 {
            var bytes = Array(seeds[i % seeds.count].utf8)
            for _ in 0..<Int.random(in: 1...5, using: &rng) {
                let at = Int.random(in: 0...bytes.count, using: &rng)
                if Bool.random(using: &rng), at < bytes.count {
                    bytes[at] = alphabet.randomElement(using: &rng) ?? 0x20
                } else {
                    bytes.insert(alphabet.randomElement(using: &rng) ?? 0x20, at: at)
                }
            }
            let text = String(decoding: bytes, as: UTF8.self)
            expectTyped { _ = try ResourceRecord(presentation: text, origin: .root, defaultTTL: 1).presentation }
            expectTyped { _ = try DNSName(text, origin: .root) }
            expectTyped { _ = try CHUNKRecord(presentation: text).presentation }
            expectTyped { _ = try DNSKEYRecord.parsePresentationLine(text) }
            expectTyped { _ = try GenericRData.parse(text) }
        }
    }
}
