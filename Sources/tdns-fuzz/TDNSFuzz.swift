// tdns-fuzz: one executable, two builds.
//
// `swift build` (no flags): a corpus replayer,
//     tdns-fuzz TARGET FILE_OR_DIR...        run TARGET's harness over every file, print a count
//     tdns-fuzz --list                       the target names
//     tdns-fuzz --seeds VECTOR_DIR OUT_DIR   write the seed corpus (OUT_DIR/<target>/seed-*)
//
// `swift build -Xswiftc -DLIBFUZZER -Xswiftc -sanitize=fuzzer` (`make fuzz`): a libFuzzer
// binary with the libFuzzer callbacks. The target comes from the environment, read once at
// start-up:
//     TDNS_FUZZ_TARGET=dns-message tdns-fuzz -runs=1000000 CORPUS_DIR...
//
// Why this build still defines an entry point: on Linux SwiftPM links every executable with
// `--defsym main=<module>_main` (so that test targets can link executables) and the link fails
// when `tdns_fuzz_main` does not exist. So the LIBFUZZER build defines `tdns_fuzz_main` and
// hands over to libFuzzer's documented entry point, `LLVMFuzzerRunDriver` — exactly what
// libFuzzer's own `main` does. (Were the rename ever dropped, libFuzzer's `main`, which
// `-sanitize=fuzzer` links in, would take over and this function would simply go unused.)

#if canImport(Glibc)
import Glibc
#endif
import TDNSFuzzTargets

#if LIBFUZZER

/// Set once by `LLVMFuzzerInitialize`, before the first input; libFuzzer runs the callbacks on
/// one thread.
nonisolated(unsafe) private var selectedTarget: FuzzTarget = .dnsMessage

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(_ argc: UnsafeMutableRawPointer?, _ argv: UnsafeMutableRawPointer?) -> Int32 {
    let name = getenv("TDNS_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        FuzzOutput.standardError(
            "tdns-fuzz: set TDNS_FUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: " "))\n")
        exit(2)
    }
    selectedTarget = target
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    selectedTarget.run(bytes)
    return 0
}

@_cdecl("tdns_fuzz_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var count = argc
    var vector = argv
    return LLVMFuzzerRunDriver(&count, &vector) { data, size in fuzzerTestOneInput(data, size) }
}

/// `int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*cb)(const uint8_t *, size_t))`
/// from libFuzzer (FuzzerInterface.h). Declared here because no C module of ours may carry
/// it; with only pointer arguments and an `Int32` result the Swift and C calling conventions
/// agree on x86_64 and arm64.
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

#else

@main
struct TDNSFuzzReplay {
    static func main() {
        var arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "--list" {
            for t in FuzzTarget.allCases { print(t.rawValue) }
            return
        }
        if arguments.first == "--seeds", arguments.count == 3 {
            writeSeeds(vectorDirectory: arguments[1], outputDirectory: arguments[2])
            return
        }
        guard arguments.count >= 2, let target = FuzzTarget(rawValue: arguments.removeFirst()) else {
            FuzzOutput.standardError("""
                usage: tdns-fuzz TARGET FILE_OR_DIR...
                       tdns-fuzz --list
                       tdns-fuzz --seeds VECTOR_DIR OUT_DIR
                targets: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: " "))

                """)
            exit(2)
        }
        var count = 0
        for path in arguments {
            let files = FuzzCorpus.files(at: path)
            if files.isEmpty { FuzzOutput.standardError("tdns-fuzz: no files at \(path)\n") }
            for file in files {
                let bytes: [UInt8]
                do {
                    bytes = try FuzzCorpus.read(file)
                } catch {
                    FuzzOutput.standardError("tdns-fuzz: cannot read \(file): \(error)\n")
                    exit(1)
                }
                if let message = target.violation(bytes) {
                    FuzzOutput.standardError("tdns-fuzz \(target.rawValue): \(file): INVARIANT BROKEN: \(message)\n")
                    abort()
                }
                count += 1
            }
        }
        print("\(target.rawValue): \(count) inputs ran without a crash")
    }

    static func writeSeeds(vectorDirectory: String, outputDirectory: String) {
        do {
            let seeds = try FuzzSeeds.make(vectorDirectory: vectorDirectory)
            for seed in seeds {
                try FuzzCorpus.write(seed.bytes, to: "\(outputDirectory)/\(seed.target.rawValue)/seed-\(seed.name)")
            }
            for t in FuzzTarget.allCases {
                print("\(t.rawValue): \(seeds.filter { $0.target == t }.count) seeds")
            }
        } catch {
            FuzzOutput.standardError("tdns-fuzz: \(error)\n")
            exit(1)
        }
    }
}

#endif
