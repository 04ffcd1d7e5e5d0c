import ArgumentParser
import Synchronization
import TDNSCore
import TDNSKRS

#if canImport(Glibc)
import Glibc
#endif

/// `tdns-krs`: a standalone Key Receiver Service daemon and CLI over libtdnskrs' receiver
/// (the same code the BIND and Knot modules run), for hosts without a module API (NSD) and
/// for operators.
@main
struct TDNSKRSCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tdns-krs",
        abstract: "TDNS Key Receiver Service: enroll with a KDC, receive DNSSEC keys, confirm them.",
        subcommands: [Enroll.self, Run.self, Status.self, Keys.self, Fetch.self])
}

/// Options every subcommand takes.
struct Global: ParsableArguments {
    @Option(name: .long, help: "State directory (keys, enrollment, replay record, audit log).")
    var state: String

    @Option(name: .customLong("set"), help: "An extra setting key=value (see krs.h); repeatable.")
    var settings: [String] = []

    var arguments: [String] { ["state_dir=\(state)"] + settings }

    func node(log: @escaping @Sendable (KRSLogLevel, String) -> Void = stderrLog) throws -> KRSNode {
        do {
            return try KRSNode(arguments: arguments, log: log)
        } catch {
            throw CLIError(error)
        }
    }
}

/// A library error as a one-line message and exit code 1 (2 is ArgumentParser's for usage).
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ error: TDNSError) { description = "\(error.code): \(error.reason)" }
}

/// One line to standard error (the C `stderr` global is not concurrency-safe in Swift 6).
func printError(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

let stderrLog: @Sendable (KRSLogLevel, String) -> Void = { level, message in
    let tag = ["error", "warning", "info", "debug"][level.rawValue]
    printError("tdns-krs: \(tag): \(message)")
}

func fail(_ error: TDNSError) -> ExitCode {
    printError("tdns-krs: \(error.code): \(error.reason)")
    return ExitCode(1)
}

struct Enroll: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Enroll this node with the KDC of an enrollment package.")
    @OptionGroup var global: Global
    @Argument(help: "The enrollment package file from `tdns-kdc enroll generate`.") var package: String
    @Option(help: "Where this node receives NOTIFYs, IP:port; its IP identifies the node.") var notify: String
    @Option(name: .customLong("key-store"), help: "bind or none.") var keyStore: String = "bind"
    @Option(name: .customLong("key-dir"), help: "Directory for BIND key files (key-store bind).") var keyDir: String?

    func run() throws {
        var args = global.arguments + ["notify_listen=\(notify)", "key_store=\(keyStore)"]
        if let keyDir { args.append("key_dir=\(keyDir)") }
        do {
            let text = try readFile(package)
            let node = try KRSNode(arguments: args, log: stderrLog)
            let id = try node.enroll(package: text, notifyAddress: notify)
            print("enrolled \(id)")
        } catch let error as TDNSError {
            throw fail(error)
        }
    }
}

/// Set by SIGTERM/SIGINT; `run` polls it.
let stopRequested = Atomic<Bool>(false)

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the KRS in the foreground until SIGTERM or SIGINT.")
    @OptionGroup var global: Global

    func run() throws {
        let node = try global.node()
        signal(SIGTERM) { _ in stopRequested.store(true, ordering: .relaxed) }
        signal(SIGINT) { _ in stopRequested.store(true, ordering: .relaxed) }
        signal(SIGPIPE, SIG_IGN)
        do {
            try node.start()
        } catch let error as TDNSError {
            throw fail(error)
        }
        while !stopRequested.load(ordering: .relaxed) { usleep(100_000) }
        node.stop()
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the node's enrollment, last distributions and keys.")
    @OptionGroup var global: Global
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let status = try global.node(log: { _, _ in }).statusJSON()
        if json { print(status); return }
        print(humanReadable(status))
    }
}

struct Keys: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the key files this node has installed.")
    @OptionGroup var global: Global
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let status = try global.node(log: { _, _ in }).statusJSON()
        guard let parsed = try? JSONValue.parse(Array(status.utf8)), let keys = parsed["keys"] else { return }
        if json { print(keys.serializedString()); return }
        for key in keys.arrayValue ?? [] {
            print("\(key["zone"]?.stringValue ?? "?")\tkey \(key["key_tag"]?.int64Value ?? 0)\talgorithm \(key["algorithm"]?.int64Value ?? 0)")
        }
    }
}

struct Fetch: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Fetch, install and confirm one distribution now.")
    @OptionGroup var global: Global
    @Argument(help: "The distribution ID (hex).") var distributionID: String

    func run() throws {
        let node = try global.node()
        do {
            let result = try node.fetchAndConfirm(distributionID)
            print(result.reportJSON)
        } catch let error as TDNSError {
            throw fail(error)
        }
    }
}

func readFile(_ path: String) throws(TDNSError) -> [UInt8] {
    guard let f = fopen(path, "rb") else { throw .config("cannot open \(path)") }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&buffer, 1, buffer.count, f)
        if n <= 0 { break }
        out += buffer[0..<n]
        if out.count > 1 << 20 { throw .tooBig("\(path) is larger than 1 MiB") }
    }
    return out
}

func humanReadable(_ statusJSON: String) -> String {
    guard let s = try? JSONValue.parse(Array(statusJSON.utf8)) else { return statusJSON }
    var lines: [String] = []
    lines.append("node:        \(s["node_id"]?.stringValue ?? "(not enrolled)")")
    lines.append("control zone: \(s["control_zone"]?.stringValue ?? "-")")
    lines.append("KDC:         \(s["kdc_address"]?.stringValue ?? "-")")
    lines.append("NOTIFY on:   \(s["notify_listen"]?.stringValue ?? "-")")
    lines.append("signatures:  \(s["require_signature"]?.boolValue == true ? "required" : "not required (legacy HMAC accepted)")")
    for d in s["distributions"]?.arrayValue ?? [] {
        lines.append("distribution \(d["id"]?.stringValue ?? "?"): \(d["result"]?.stringValue ?? "?") \(d["detail"]?.stringValue ?? "")")
    }
    lines.append("keys:        \((s["keys"]?.arrayValue ?? []).count)")
    return lines.joined(separator: "\n")
}
