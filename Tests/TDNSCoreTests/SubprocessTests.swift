import Foundation
import Testing
import TDNSTestSupport

@testable import TDNSCore

/// How the key stores run rndc, keymgr, knotc, dnssec-signzone and nsd-control.
@Suite("Subprocess")
struct SubprocessTests {
    @Test("exit status and output (stdout and stderr together, trailing whitespace removed)")
    func statusAndOutput() throws {
        let ok = try Subprocess.run(["/bin/sh", "-c", "echo out; echo err >&2"], timeout: 10)
        #expect(ok.succeeded && ok.exitStatus == 0)
        #expect(ok.output == "out\nerr")
        #expect(ok.summary(timeout: 10) == "ok")
        let failed = try Subprocess.run(["/bin/sh", "-c", "echo first; echo 'rndc: not found' >&2; exit 3"], timeout: 10)
        #expect(!failed.succeeded && failed.exitStatus == 3)
        #expect(failed.summary(timeout: 10) == "exit 3: rndc: not found")
    }

    @Test("arguments reach the tool as they are: no shell in between")
    func noShell() throws {
        let r = try Subprocess.run(["/bin/echo", "example.test.; rm -rf /", "$(id)"], timeout: 10)
        #expect(r.output == "example.test.; rm -rf / $(id)")
    }

    @Test("output is bounded")
    func boundedOutput() throws {
        let r = try Subprocess.run(["/bin/sh", "-c", "yes x | head -c 100000"], timeout: 10)
        #expect(r.succeeded)
        #expect(r.output.utf8.count <= Subprocess.outputLimit)
    }

    @Test("a tool that hangs is killed at the deadline; a cancelled wait ends at once")
    func deadlineAndCancel() throws {
        let start = Date()
        let slow = try Subprocess.run(["/bin/sleep", "30"], timeout: 0.3)
        #expect(slow.timedOut && !slow.succeeded)
        #expect(slow.summary(timeout: 0.3).hasPrefix("timed out"))
        let cancelled = try Subprocess.run(["/bin/sleep", "30"], timeout: 30, cancelled: { true })
        #expect(cancelled.timedOut)
        #expect(Date().timeIntervalSince(start) < 20, "neither waited for sleep 30")
    }

    @Test("a relative path or a missing tool is a clear error, not a run")
    func badCommands() {
        let relative = #expect(throws: TDNSError.self) { try Subprocess.run(["rndc", "loadkeys"], timeout: 1) }
        #expect(relative?.code == .config)
        let missing = #expect(throws: TDNSError.self) { try Subprocess.run(["/nonexistent/rndc"], timeout: 1) }
        #expect(missing?.code == .config)
        #expect(missing?.reason.contains("/nonexistent/rndc: cannot run") == true)
    }
}
