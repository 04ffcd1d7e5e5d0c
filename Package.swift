// swift-tools-version:6.0
//
// libtdnskrs — the TDNS Key Receiver Service as an embeddable C library.
//
// Target borders (see STYLE.md in the project docs):
//   CTDNSKRS     the hand-written public C headers in Include/, as a Clang module
//   CCjose       cjose (JOSE) through pkg-config; only *_cjose.swift files import it
//   TDNSCrypto   HPKE (swift-crypto), JOSE (cjose), strict JSON/JWK/JWE parsing; no C pointers leave it
//   TDNSKRSCABI  the only target with @_cdecl entry points, Unmanaged and C buffers
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
    ],
    targets: [
        .systemLibrary(name: "CTDNSKRS", path: "Include"),
        .systemLibrary(
            name: "CCjose", path: "Sources/CCjose", pkgConfig: "cjose",
            providers: [.apt(["libcjose-dev", "libjansson-dev", "libssl-dev"])]
        ),
        .target(
            name: "TDNSCrypto",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                "CCjose",
            ]
        ),
        .target(
            name: "TDNSKRSCABI",
            dependencies: ["TDNSCrypto", "CTDNSKRS"],
            exclude: ["exports.map", "tdnskrs.pc.in"]
        ),
        .testTarget(
            name: "TDNSCryptoTests",
            dependencies: ["TDNSCrypto"]
        ),
    ]
)
