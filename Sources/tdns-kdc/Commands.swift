#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import TDNSCore
import TDNSKDC

// The `tdns-kdc` command line: argument parsing and printing only; every operation is a call
// into TDNSKDC. Bad input ends with one line on standard error and exit status 2 (main.swift).

struct TDNSKDCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tdns-kdc",
        abstract: "Reference TDNS Key Distribution Center: enrollment, distributions, CHUNK service.",
        discussion: "State lives in --state DIR (or $TDNS_KDC_STATE). See README.md for a worked example.",
        subcommands: [Init.self, Policy.self, Node.self, Enroll.self, Zone.self, Key.self, Distribute.self, Serve.self, ExportZone.self, Status.self]
    )
}

/// Options every command takes.
struct Global: ParsableArguments {
    @Option(name: .long, help: "State directory (default: $TDNS_KDC_STATE).")
    var state: String?

    @Flag(name: .long, help: "Print the result as JSON.")
    var json = false

    /// The KDC of the state directory. Commands print their result and stay silent otherwise;
    /// `serve` logs to standard error.
    func kdc(logging: Bool = false) throws -> KDC {
        guard let dir = state ?? environment("TDNS_KDC_STATE"), !dir.isEmpty else {
            throw ValidationError("--state DIR is required (or set TDNS_KDC_STATE)")
        }
        return KDC(stateDirectory: dir, log: logging ? .standardError() : .silent)
    }

    func emit(_ report: KDCReport) {
        for w in report.warnings {
            let line = Array("tdns-kdc: warning: \(w)\n".utf8)
            _ = line.withUnsafeBytes { write(2, $0.baseAddress, line.count) }
        }
        if json {
            print(report.json.serializedString())
        } else {
            report.lines.forEach { print($0) }
        }
    }
}

func environment(_ name: String) -> String? {
    guard let p = getenv(name) else { return nil }
    return String(cString: p)
}

/// Durations an operator gives: the one duration syntax (GoDuration), 1 second to 10 years.
func duration(_ text: String, _ option: String) throws -> Int64 {
    do {
        return try GoDuration.seconds(text, in: 1...(10 * 365 * 86_400))
    } catch {
        throw ValidationError("\(option) \"\(text)\" is not a duration like 5m, 90s or 1h30m")
    }
}

func parseCrypto(_ text: String) throws -> KDCCrypto {
    guard let c = KDCCrypto(rawValue: text.lowercased()) else { throw ValidationError("--crypto must be hpke or jose") }
    return c
}

func parseCryptoList(_ text: String) throws -> [KDCCrypto] {
    guard let list = KDCCrypto.list(text) else { throw ValidationError("--supported-crypto must be a comma-separated list of hpke and jose") }
    return list
}

func parseLayout(_ text: String) throws -> KDCHPKELayout {
    guard let l = KDCHPKELayout(rawValue: text.lowercased()) else { throw ValidationError("--hpke-layout must be v1 or v2") }
    return l
}

// MARK: - init

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create the state directory and the KDC's long-term keys.")
    @OptionGroup var global: Global
    @Option(help: "Control zone (FQDN with trailing dot).") var controlZone: String
    @Option(help: "IP:port of the DNS service (also the enrollment address).") var listen: String
    @Option(help: "CHUNK RR type: 65288 (current) or 65015 (Jan–Mar 2026 builds).") var chunkType: UInt16 = 65288
    @Option(help: "distribution_ttl written into manifests.") var distributionTtl = "5m"
    @Option(help: "Default enrollment window.") var enrollmentWindow = "5m"
    @Option(help: "Default data chunk size in bytes.") var chunkSize = 60000
    @Option(help: "retire_time written into manifests (omitted when not given).") var retireTime: String?

    func run() throws {
        let ttl = try duration(distributionTtl, "--distribution-ttl")
        let window = try duration(enrollmentWindow, "--enrollment-window")
        let retire = try retireTime.map { try duration($0, "--retire-time") }
        global.emit(try global.kdc().initialize(
            controlZone: controlZone, listen: listen, chunkType: chunkType, distributionTTL: ttl,
            enrollmentWindow: window, chunkSize: chunkSize, retireTime: retire))
    }
}

// MARK: - policy

struct Policy: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show or change the backend policy: the default backend and the supported ones.",
        discussion: "Without options: shows it. Removing a backend from --supported-crypto stops new enrollments with it; nodes using it keep receiving.")
    @OptionGroup var global: Global
    @Option(help: "Backend of nodes with keys for several backends that stated no preference: hpke or jose.") var defaultCrypto: String?
    @Option(help: "Backends new enrollments, node add and node set may use, e.g. hpke,jose.") var supportedCrypto: String?

    func run() throws {
        global.emit(try global.kdc().policy(
            defaultCrypto: try defaultCrypto.map(parseCrypto), supportedCrypto: try supportedCrypto.map(parseCryptoList)))
    }
}

// MARK: - node

struct Node: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Register, list, show, switch and remove nodes.",
        subcommands: [Add.self, List.self, Show.self, Change.self, Remove.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every node: backend, keys on file, enrollment, last distribution.")
        @OptionGroup var global: Global

        func run() throws { global.emit(try global.kdc().listNodes()) }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One node: backend in use and why, keys on file, enrollment, last distributions.")
        @OptionGroup var global: Global
        @Argument(help: "Node ID (FQDN with trailing dot).") var nodeID: String

        func run() throws { global.emit(try global.kdc().showNode(id: nodeID)) }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Retire a node: its live distributions are withdrawn, its tokens revoked, no more NOTIFYs.")
        @OptionGroup var global: Global
        @Argument(help: "Node ID (FQDN with trailing dot).") var nodeID: String

        func run() throws { global.emit(try global.kdc().removeNode(id: nodeID)) }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a node with pre-provisioned public keys.")
        @OptionGroup var global: Global
        @Argument(help: "Node ID (FQDN with trailing dot).") var nodeID: String
        @Option(help: "Backend for distributions: hpke or jose.") var crypto: String
        @Option(help: "Node's X25519 public key, 64 hex characters.") var hpkePubkey: String?
        @Option(help: "Node's public P-256 JWK (JSON).") var josePubkey: String?
        @Option(help: "IP:port where the node takes NOTIFYs.") var notify: String?
        @Flag(help: "A Go KRS: the Go KDC's format (HMAC-only manifests, unsigned NOTIFYs).") var legacy = false
        @Option(help: "With --legacy: HPKE layout v1 (a Go KRS with use_crypto_v2: false) or v2 (default).") var hpkeLayout: String?

        func run() throws {
            global.emit(try global.kdc().addNode(
                id: nodeID, crypto: try parseCrypto(crypto), hpkePublicKey: hpkePubkey, josePublicKey: josePubkey,
                notify: notify, legacy: legacy, hpkeLayout: try hpkeLayout.map(parseLayout)))
        }
    }

    struct Change: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set", abstract: "Change how later distributions to a node are made.")
        @OptionGroup var global: Global
        @Argument(help: "Node ID (FQDN with trailing dot).") var nodeID: String
        @Option(help: "Switch the backend: hpke or jose (the node must have a key for it).") var crypto: String?
        @Flag(help: "The Go KDC's format (for a Go KRS).") var legacy = false
        @Flag(help: "Signed distributions (JWT manifest); a Go KRS cannot read them.") var signed = false
        @Option(help: "For a legacy HPKE node: v1 (Go KRS with use_crypto_v2: false) or v2.") var hpkeLayout: String?

        func validate() throws {
            guard !(legacy && signed) else { throw ValidationError("give at most one of --legacy and --signed") }
        }

        func run() throws {
            global.emit(try global.kdc().setNode(
                id: nodeID, legacy: legacy ? true : (signed ? false : nil), hpkeLayout: try hpkeLayout.map(parseLayout),
                crypto: try crypto.map(parseCrypto)))
        }
    }
}

// MARK: - enroll

struct Enroll: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Enrollment packages and tokens.", subcommands: [Generate.self, Activate.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a token and write the enrollment package.")
        @OptionGroup var global: Global
        @Argument(help: "Node ID (FQDN with trailing dot).") var nodeID: String
        @Option(help: "Package file to write (mode 0600).") var out: String
        @Option(help: "Only this backend: hpke or jose (default: every backend the policy supports).") var crypto: String?
        @Option(help: "IP:port for NOTIFYs (overrides the node's own notify_address).") var notify: String?
        @Option(help: "How long the package can be activated and used (valid_until).") var validFor = "7d"
        @Flag(help: "The node gets the Go KDC's format whatever it announces (for a Go KRS).") var legacy = false
        @Option(help: "Package format: go (PROTOCOL §11.2, default) or seed (the design document's version 2.0 package).") var format = "go"

        func run() throws {
            guard let f = KDC.PackageFormat(rawValue: format.lowercased()) else { throw ValidationError("--format must be go or seed") }
            global.emit(try global.kdc().generateEnrollment(
                nodeID: nodeID, out: out, crypto: try crypto.map(parseCrypto), notify: notify,
                validFor: try duration(validFor, "--valid-for"), legacy: legacy, format: f))
        }
    }

    struct Activate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make the node's token valid for a short window.")
        @OptionGroup var global: Global
        @Argument(help: "Node ID (FQDN with trailing dot).") var nodeID: String
        @Option(help: "How long the token stays valid (default: the KDC's enrollment window, 5m).") var window: String?

        func run() throws {
            global.emit(try global.kdc().activateEnrollment(nodeID: nodeID, window: try window.map { try duration($0, "--window") }))
        }
    }
}

// MARK: - zone, key

struct Zone: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Zones whose keys the KDC distributes.", subcommands: [Add.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a zone.")
        @OptionGroup var global: Global
        @Argument(help: "Zone name (FQDN with trailing dot).") var zone: String

        func run() throws { global.emit(try global.kdc().addZone(zone)) }
    }
}

struct Key: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "DNSSEC keys.", subcommands: [Generate.self, Import.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Generate a DNSSEC key.")
        @OptionGroup var global: Global
        @Option(help: "Zone.") var zone: String
        @Option(help: "DNSSEC algorithm: 13, 15, 8 or 14.") var algorithm: UInt8
        @Option(help: "ksk, zsk or csk.") var type: String

        func run() throws { global.emit(try global.kdc().generateKey(zone: zone, algorithm: algorithm, keyType: type)) }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Import a BIND .private key file.")
        @OptionGroup var global: Global
        @Option(help: "Zone.") var zone: String
        @Argument(help: "BIND K<zone>+<alg>+<tag>.private file.") var file: String
        @Option(help: "ksk, zsk or csk (default: from the .key file beside it, else zsk).") var type: String?

        func run() throws { global.emit(try global.kdc().importKey(zone: zone, file: file, keyType: type)) }
    }
}

// MARK: - distribute

struct Distribute: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create distributions (a running serve sends the NOTIFYs).")
    @OptionGroup var global: Global
    @Option(help: "Target node.") var node: String?
    @Flag(help: "Every registered node.") var all = false
    @Option(help: "Zone: every key of it in one distribution (not for ping).") var zone: String?
    @Option(help: "Only this key of --zone.") var key: UInt16?
    @Flag(help: "Every key of every zone, in one distribution per node.") var allZones = false
    @Option(help: "roll_key, delete_key or ping.") var op = "roll_key"
    @Option(help: "Data chunk size (default: the KDC's, 60000).") var chunkSize: Int?

    func validate() throws {
        guard (node == nil) != !all else { throw ValidationError("give exactly one of --node NODE_ID and --all") }
        guard KDCOperation(rawValue: op) != nil else { throw ValidationError("--op must be roll_key, delete_key or ping") }
    }

    func run() throws {
        let operation = KDCOperation(rawValue: op) ?? .rollKey
        global.emit(try global.kdc().distribute(
            target: node.map { .node($0) } ?? .all, zone: zone, keyTag: key, operation: operation, chunkSize: chunkSize,
            allZones: allZones))
    }
}

// MARK: - serve, export-zone, status

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the control zone (UDP and TCP) and send NOTIFYs until SIGINT/SIGTERM.")
    @OptionGroup var global: Global
    @Option(help: "Listen on this IP:port instead of the configured one.") var listen: String?
    @Option(help: "Handler threads.") var workers = 4
    @Option(help: "Serve Prometheus metrics (HTTP GET /metrics) on this IP:port; off by default.") var metrics: String?

    func run() throws {
        let server = try KDCServer(kdc: try global.kdc(logging: true), listen: listen, workers: workers, metrics: metrics)
        try server.runUntilSignalled()
    }
}

struct ExportZone: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the control zone with every live distribution as a zone file.")
    @OptionGroup var global: Global
    @Flag(help: "RFC 3597 generic RDATA (TYPE65288 \\# LEN HEX), loadable by BIND, Knot and NSD.") var generic = false

    func run() throws { print(try global.kdc().exportZone(generic: generic), terminator: "") }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Nodes, enrollments and distributions.")
    @OptionGroup var global: Global
    @Option(help: "Only this node.") var node: String?

    func run() throws { global.emit(try global.kdc().status(node: node)) }
}

