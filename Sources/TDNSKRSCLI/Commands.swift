import ArgumentParser
import Synchronization
import TDNSCore
import TDNSKRS

#if canImport(Glibc)
import Glibc
#endif

/// The subcommands of `tdns-krs` (a standalone Key Receiver Service daemon and CLI over the
/// receiver the BIND and Knot modules run) and of `tdnskrs-nsd` (the same, as NSD's sidecar):
/// each executable is a few lines that pick a ``CLIProfile`` and the commands it offers.

/// What distinguishes the executables: their name in messages and the settings they impose.
public struct CLIProfile: Sendable {
    public var name: String
    /// Settings put after everything else the user gives (e.g. `key_store=nsd`).
    public var forcedSettings: [String]
    /// The `--config` file used when none is given, if it exists.
    public var defaultConfig: String?

    public init(name: String, forcedSettings: [String] = [], defaultConfig: String? = nil) {
        self.name = name
        self.forcedSettings = forcedSettings
        self.defaultConfig = defaultConfig
    }

    /// Set once by the executable before parsing.
    public static let current = Mutex(CLIProfile(name: "tdns-krs"))
    static var active: CLIProfile { current.withLock { $0 } }
}

/// Options every subcommand takes.
struct Global: ParsableArguments {
    @Option(name: .long, help: "State directory (keys, enrollment, replay record, audit log); or state_dir= in the config file.")
    var state: String?

    @Option(name: .long, help: "A settings file, one key=value per line (see krs.h); --state and --set override it.")
    var config: String?

    @Option(name: .customLong("set"), help: "An extra setting key=value (see krs.h); repeatable.")
    var settings: [String] = []

    /// The settings in precedence order (later ones win): the config file, --state, --set,
    /// then what the executable imposes.
    var arguments: [String] { userArguments + CLIProfile.active.forcedSettings }

    /// The same without the imposed settings.
    var userArguments: [String] {
        var args: [String] = []
        if let file = config ?? CLIProfile.active.defaultConfig.flatMap({ POSIXFile.exists($0) ? $0 : nil }) {
            args.append("config=\(file)")
        }
        if let state { args.append("state_dir=\(state)") }
        return args + settings
    }

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
    printError("\(CLIProfile.active.name): \(tag): \(message)")
}

func fail(_ error: TDNSError) -> ExitCode {
    printError("\(CLIProfile.active.name): \(error.code): \(error.reason)")
    return ExitCode(1)
}

public struct Enroll: ParsableCommand {
    public static let configuration = CommandConfiguration(abstract: "Enroll this node with the KDC of an enrollment package.")
    @OptionGroup var global: Global
    @Argument(help: "The enrollment package file from `tdns-kdc enroll generate` (Go or seed format).") var package: String
    @Option(help: "Where this node receives NOTIFYs, IP:port; its IP identifies the node (default: notify_listen, e.g. from the enrollment being renewed).")
    var notify: String?
    @Option(name: .customLong("key-store"), help: "bind, knot, nsd or none (default: bind, or the config file's).") var keyStore: String?
    @Option(name: .customLong("key-dir"), help: "Directory for the key files (default: the config file's).") var keyDir: String?
    @Option(name: .customLong("node-id"), help: "This node's ID (FQDN), for a seed-format package, which names none; or node_id=.")
    var nodeID: String?
    @Flag(help: "Re-enroll a node enrolled already: new keys beside the old ones, switched to when the KDC acknowledges them; the old ones still open distributions until the first made with the new keys (at most 7 days).")
    var reenroll = false

    public init() {}

    public func run() throws {
        // Later settings win: the options here override the config file, the profile's forced
        // settings (tdnskrs-nsd: key_store=nsd) override everything.
        var args = global.userArguments
        if let notify { args.append("notify_listen=\(notify)") }
        if let keyStore { args.append("key_store=\(keyStore)") }
        if let keyDir { args.append("key_dir=\(keyDir)") }
        args += CLIProfile.active.forcedSettings
        do {
            let text = try readFile(package)
            let node = try KRSNode(arguments: args, log: stderrLog)
            let id = try node.enroll(package: text, notifyAddress: notify, nodeID: nodeID, reenroll: reenroll)
            print("\(reenroll ? "re-enrolled" : "enrolled") \(id)")
        } catch {
            throw fail(error)
        }
    }
}

/// Stopped by SIGTERM/SIGINT (an atomic store: safe in a signal handler); `run` waits on it.
let stopRequested = StopToken()

public struct Run: ParsableCommand {
    public static let configuration = CommandConfiguration(abstract: "Run the KRS in the foreground until SIGTERM or SIGINT.")
    @OptionGroup var global: Global
    @Option(name: .customLong("resign-every"), help: "key_store=nsd: re-sign every zone with keys this often, in hours (0: never).")
    var resignHours: Double = 24
    @Option(help: "Serve Prometheus metrics (HTTP GET /metrics) on this IP:port (the metrics_listen setting); off by default.")
    var metrics: String?

    public init() {}

    public func run() throws {
        var global = global
        if let metrics { global.settings.append("metrics_listen=\(metrics)") }
        let node = try global.node()
        // Made here, before the handlers exist: a global is created lazily on first use, and
        // creating it (an allocation) inside a signal handler would not be async-signal-safe.
        stopRequested.reset()
        signal(SIGTERM) { _ in stopRequested.stop() }
        signal(SIGINT) { _ in stopRequested.stop() }
        signal(SIGPIPE, SIG_IGN)
        do {
            try node.start()
        } catch {
            throw fail(error)
        }
        // NSD has no signer of its own: the sidecar refreshes signatures before they expire
        // (dnssec-signzone makes them valid for 30 days).
        let resign = node.settings.keyStore == .nsd && resignHours > 0
        var nextResign = MonotonicClock.now() + resignHours * 3600
        while stopRequested.sleep(0.1) {
            if resign && MonotonicClock.now() >= nextResign {
                nextResign += resignHours * 3600
                resignAll(node)
            }
        }
        node.stop()
    }
}

/// Re-signs every zone with keys, logging what ran (and a failure) to standard error.
private func resignAll(_ node: KRSNode) {
    let result = Result { () throws(TDNSError) in try node.receiver.resignNSDZones() }
    switch result {
    case .success(let notes): for note in notes { stderrLog(.info, note) }
    case .failure(let error): stderrLog(.error, "re-signing failed: \(error.reason)")
    }
}

/// `tdnskrs-nsd sign [ZONE…]`: sign now (after editing an unsigned zone file).
public struct Sign: ParsableCommand {
    public static let configuration = CommandConfiguration(
        abstract: "key_store=nsd: sign zones again with their current keys and reload them in NSD.")
    @OptionGroup var global: Global
    @Argument(help: "Zones, with trailing dot (default: every zone with keys).") var zones: [String] = []

    public init() {}

    public func run() throws {
        let node = try global.node()
        do {
            for note in try node.receiver.resignNSDZones(zones.isEmpty ? nil : zones) { print(note) }
        } catch {
            throw fail(error)
        }
    }
}

public struct Status: ParsableCommand {
    public static let configuration = CommandConfiguration(abstract: "Show the node's enrollment, last distributions and keys.")
    @OptionGroup var global: Global
    @Flag(help: "Print JSON.") var json = false

    public init() {}

    public func run() throws {
        let status = try global.node(log: { _, _ in }).statusJSON()
        if json { print(status); return }
        print(humanReadable(status))
    }
}

public struct Keys: ParsableCommand {
    public static let configuration = CommandConfiguration(abstract: "List the key files this node has installed.")
    @OptionGroup var global: Global
    @Flag(help: "Print JSON.") var json = false

    public init() {}

    public func run() throws {
        let status = try global.node(log: { _, _ in }).statusJSON()
        guard let parsed = try? JSONValue.parse(Array(status.utf8)), let keys = parsed["keys"] else { return }
        if json { print(keys.serializedString()); return }
        for key in keys.arrayValue ?? [] {
            print("\(key["zone"]?.stringValue ?? "?")\tkey \(key["key_tag"]?.int64Value ?? 0)\talgorithm \(key["algorithm"]?.int64Value ?? 0)"
                + "\t\(key["ksk"]?.boolValue == true ? "KSK" : "ZSK")\t\(key["state"]?.stringValue ?? "?")")
        }
    }
}

public struct Fetch: ParsableCommand {
    public static let configuration = CommandConfiguration(abstract: "Fetch, install and confirm one distribution now.")
    @OptionGroup var global: Global
    @Argument(help: "The distribution ID (hex).") var distributionID: String

    public init() {}

    public func run() throws {
        let node = try global.node()
        do {
            let result = try node.fetchAndConfirm(distributionID)
            print(result.reportJSON)
        } catch {
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
    let crypto = (s["crypto"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ", ")
    var keysLine = "crypto:      \(crypto.isEmpty ? "-" : crypto)"
    if let until = s["previous_keys_until"]?.int64Value { keysLine += " (keys from before the re-enrollment kept until \(RFC3339.format(until)))" }
    lines.append(keysLine)
    lines.append("signatures:  \(s["require_signature"]?.boolValue == true ? "required" : "not required (legacy HMAC accepted)")")
    for d in s["distributions"]?.arrayValue ?? [] {
        lines.append("distribution \(d["id"]?.stringValue ?? "?"): \(d["result"]?.stringValue ?? "?") \(d["detail"]?.stringValue ?? "")")
    }
    lines.append("keys:        \((s["keys"]?.arrayValue ?? []).count)")
    // A `status` beside the running node has no distributions of its own: the audit log tells.
    let audit = s["audit"]?.arrayValue ?? []
    if !audit.isEmpty { lines.append("audit log (last \(audit.count)):") }
    for a in audit {
        var fields = ["\(a["time"]?.int64Value ?? 0)", a["distribution_id"]?.stringValue ?? "-", a["result"]?.stringValue ?? "?"]
        if let zone = a["zone"]?.stringValue { fields.append(zone) }
        if let tag = a["key_tag"]?.int64Value { fields.append("key \(tag)") }
        if let reason = a["reason"]?.stringValue { fields.append(String(reason.prefix(120))) }
        lines.append("  " + fields.joined(separator: " "))
    }
    return lines.joined(separator: "\n")
}
