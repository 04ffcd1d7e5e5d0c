#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import TDNSCore

// Bad command-line input is one line on standard error and exit status 2, never a stack
// trace or a usage dump; `--help` prints the usage and exits 0. Failures that are not the
// operator's input (storage, network) exit 1.

func fail(_ message: String, status: Int32) -> Never {
    let line = "tdns-kdc: " + String(message.map { $0 == "\n" ? " " : $0 }) + "\n"
    let bytes = Array(line.utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, bytes.count) }
    exit(status)
}

do {
    var command = try TDNSKDCCommand.parseAsRoot()
    try command.run()
} catch let error as TDNSError {
    switch error.code {
    case .config, .malformed, .policy, .wrongKeyType, .keyMismatch, .tooBig:
        fail(error.reason, status: 2)
    default:
        fail(error.reason, status: 1)
    }
} catch {
    let code = TDNSKDCCommand.exitCode(for: error)
    if code == .success {
        print(TDNSKDCCommand.fullMessage(for: error))
        exit(0)
    }
    var message = TDNSKDCCommand.message(for: error)
    if let first = message.split(separator: "\n").first { message = String(first) }
    if message.hasPrefix("Error: ") { message = String(message.dropFirst(7)) }
    fail(message.isEmpty ? "invalid arguments (see --help)" : message, status: 2)
}
