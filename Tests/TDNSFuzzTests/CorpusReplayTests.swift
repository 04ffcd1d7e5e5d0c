import Foundation
import TDNSFuzzTargets
import Testing

/// Replays the fuzz corpora through the harnesses: every file of Tests/Fuzz/corpus/<target>/
/// (seeds and the inputs libFuzzer found interesting) and Tests/Fuzz/crashes/<target>/ (inputs
/// that once crashed or broke an invariant, kept after the fix). This is how `make test`
/// exercises the harnesses without running the fuzzer itself (`make fuzz` does that).
@Suite("Fuzz corpus replay")
struct CorpusReplayTests {
    static let fuzzDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz").path

    @Test("corpus and crash inputs run clean", arguments: FuzzTarget.allCases)
    func replay(_ target: FuzzTarget) throws {
        let corpus = FuzzCorpus.files(at: "\(Self.fuzzDirectory)/corpus/\(target.rawValue)")
        let crashes = FuzzCorpus.files(at: "\(Self.fuzzDirectory)/crashes/\(target.rawValue)")
        #expect(!corpus.isEmpty, "no corpus for \(target.rawValue)")
        for file in corpus + crashes {
            let bytes = try FuzzCorpus.read(file)
            if let message = target.violation(bytes) {
                Issue.record("\(target.rawValue): \(file): \(message)")
            }
        }
    }

    @Test("the seed generator still matches the vector files")
    func seedsBuild() throws {
        let vectors = URL(fileURLWithPath: Self.fuzzDirectory).deletingLastPathComponent().appendingPathComponent("Vectors").path
        let seeds = try FuzzSeeds.make(vectorDirectory: vectors)
        for target in FuzzTarget.allCases {
            #expect(seeds.contains { $0.target == target }, "no seeds for \(target.rawValue)")
        }
        for seed in seeds {
            #expect(seed.target.violation(seed.bytes) == nil, "seed \(seed.target.rawValue)/\(seed.name)")
        }
    }
}
