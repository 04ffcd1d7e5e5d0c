import ArgumentParser
import TDNSKRSCLI

/// `tdnskrs-nsd`: the KRS as NSD's sidecar (NSD has no module API). It is `tdns-krs` with
/// `key_store=nsd` imposed and `/etc/tdnskrs/nsd.conf` as its default settings file: keys
/// arrive by NOTIFY, are written as K-files, the zone is signed with dnssec-signzone into
/// the file NSD serves, and `nsd-control reload ZONE` loads it (Examples/tdnskrs-nsd.conf,
/// Examples/tdnskrs-nsd.service).
struct TDNSKRSNSDCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tdnskrs-nsd",
        abstract: "TDNS Key Receiver Service for NSD: receive DNSSEC keys, sign zones with them, reload NSD.",
        discussion: "Settings come from --config (default /etc/tdnskrs/nsd.conf when it exists), then --state and --set.",
        subcommands: [Enroll.self, Run.self, Sign.self, Status.self, Keys.self, Fetch.self])
}

CLIProfile.current.withLock {
    $0 = CLIProfile(name: "tdnskrs-nsd", forcedSettings: ["key_store=nsd"], defaultConfig: "/etc/tdnskrs/nsd.conf")
}
TDNSKRSNSDCommand.main()
