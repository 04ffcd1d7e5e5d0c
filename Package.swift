// swift-tools-version:6.0
//
// libtdnskrs — the TDNS Key Receiver Service as an embeddable C library.
//
// Target borders (see STYLE.md in the project docs):
//   CTDNSKRS     the hand-written public C headers in Include/, as a Clang module
//   CCjose       cjose (JOSE) through pkg-config; only *_cjose.swift files import it
//   TDNSCore     what every layer shares: the error type (codes map 1:1 to KRS_E*), hex,
//                base64/base64url, a strict bounded JSON parser
//   TDNSWire     DNS wire format: messages, names, EDNS(0), CHUNK, KEY/SIG; pure Swift, no crypto, no C
//   TDNSCrypto   HPKE (swift-crypto), JOSE (cjose), strict JSON/JWK/JWE parsing, DNSSEC key
//                material (PKCS#8, DNSKEY, key tags), SIG(0) signatures; no C pointers leave it
//   TDNSKRS      the receiver: settings, manifests, reassembly, decryption policy, key stores,
//                replay cache, audit log
//   TDNSKRSCABI  the only target with @c entry points, C buffers and pointers
//
// The shipping libtdnskrs.so is built by the Makefile with a static Swift runtime in
// its own scratch path; `swift build` / `swift test` stay ordinary debug builds.
import PackageDescription

let package = Package(
    name: "libtdnskrs",
    products: [
        .library(name: "tdnskrs", type: .dynamic, targets: ["TDNSKRSCABI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto", exact: "4.5.2"),
        .package(url: "https://github.com/apple/swift-asn1", exact: "1.7.4"),
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
    ],
    targets: [
        .systemLibrary(name: "CTDNSKRS", path: "Include"),
        .systemLibrary(
            name: "CCjose", path: "Sources/CCjose", pkgConfig: "cjose",
            providers: [.apt(["libcjose-dev", "libjansson-dev", "libssl-dev"])]
        ),
        .target(name: "TDNSCore"),
        .target(name: "TDNSWire", dependencies: ["TDNSCore"]),
        .target(name: "TDNSTransport", dependencies: ["TDNSCore", "TDNSWire"]),
        .target(
            name: "TDNSCrypto",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                "CCjose",
                "TDNSCore",
                "TDNSWire",
            ]
        ),
        .target(
            name: "TDNSKRS",
            dependencies: ["TDNSCore", "TDNSWire", "TDNSCrypto", "TDNSTransport"]
        ),
        .target(
            name: "TDNSKRSCABI",
            dependencies: ["TDNSKRS", "TDNSCore", "TDNSWire", "TDNSCrypto", "CTDNSKRS"],
            exclude: ["exports.map", "tdnskrs.pc.in"]
        ),
        // The reference KDC (issue 4): the library (state, distributions, enrollment, the DNS
        // service) and the thin `tdns-kdc` command line over it.
        .target(
            name: "TDNSKDC",
            dependencies: [
                "TDNSCore", "TDNSWire", "TDNSCrypto", "TDNSTransport",
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "tdns-kdc",
            dependencies: ["TDNSKDC", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // The standalone KRS daemon and CLI (issue 5), over the same TDNSKRS the modules use,
        // and NSD's sidecar (issue 6): two thin executables over one set of commands.
        .target(
            name: "TDNSKRSCLI",
            dependencies: ["TDNSKRS", "TDNSCore", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "tdns-krs",
            dependencies: ["TDNSKRSCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "tdnskrs-nsd",
            dependencies: ["TDNSKRSCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Shared test helpers (vector files, error-code expectations); linked by tests only.
        .target(name: "TDNSTestSupport", dependencies: ["TDNSCore"], path: "Tests/TDNSTestSupport"),
        .testTarget(name: "TDNSCoreTests", dependencies: ["TDNSCore", "TDNSTestSupport"]),
        .testTarget(name: "TDNSWireTests", dependencies: ["TDNSWire", "TDNSCore", "TDNSTestSupport"]),
        .testTarget(name: "TDNSTransportTests", dependencies: ["TDNSTransport", "TDNSWire", "TDNSCore", "TDNSTestSupport"]),
        .testTarget(name: "TDNSCryptoTests", dependencies: ["TDNSCrypto", "TDNSCore", "TDNSTestSupport"]),
        .testTarget(
            name: "TDNSKDCTests",
            dependencies: ["TDNSKDC", "TDNSKRS", "TDNSTransport", "TDNSCore", "TDNSWire", "TDNSCrypto", "TDNSTestSupport"]
        ),
        .testTarget(
            name: "TDNSKRSTests",
            dependencies: ["TDNSKRS", "TDNSCore", "TDNSWire", "TDNSCrypto", "TDNSTransport", "TDNSTestSupport"]
        ),
        // libFuzzer harnesses (issue 3, item 11): the harness bodies, the `tdns-fuzz` executable
        // (corpus replayer, or with -DLIBFUZZER -sanitize=fuzzer a libFuzzer binary: `make fuzz`)
        // and the unit test that replays Tests/Fuzz/corpus and Tests/Fuzz/crashes.
        .target(name: "TDNSFuzzTargets", dependencies: ["TDNSCore", "TDNSWire", "TDNSCrypto", "TDNSKRS", "TDNSKDC"]),
        .executableTarget(name: "tdns-fuzz", dependencies: ["TDNSFuzzTargets"]),
        .testTarget(name: "TDNSFuzzTests", dependencies: ["TDNSFuzzTargets"]),
    ]
)
