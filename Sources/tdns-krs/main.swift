import ArgumentParser
import TDNSKRSCLI

/// `tdns-krs`: the standalone Key Receiver Service daemon and CLI (the commands live in
/// TDNSKRSCLI, shared with `tdnskrs-nsd`).
struct TDNSKRSCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tdns-krs",
        abstract: "TDNS Key Receiver Service: enroll with a KDC, receive DNSSEC keys, confirm them.",
        subcommands: [Enroll.self, Run.self, Status.self, Keys.self, Fetch.self])
}

TDNSKRSCommand.main()
