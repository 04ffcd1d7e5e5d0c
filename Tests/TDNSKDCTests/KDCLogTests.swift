import Synchronization
import Testing

@testable import TDNSKDC

/// A monotonic clock the test moves (seconds, fractional).
private final class Seconds: Sendable {
    private let micros = Atomic<Int>(1_000_000_000)
    var now: Double { Double(micros.load(ordering: .relaxed)) / 1e6 }
    func advance(_ seconds: Double) { micros.add(Int((seconds * 1e6).rounded()), ordering: .relaxed) }
}

private final class Lines: Sendable {
    let all = Mutex<[String]>([])
    func append(_ level: KDCLog.Level, _ message: String) { all.withLock { $0.append("\(level.rawValue): \(message)") } }
    var count: Int { all.withLock { $0.count } }
    func matching(_ prefix: String) -> [String] { all.withLock { $0.filter { $0.hasPrefix(prefix) } } }
}

@Suite("KDC log: refused lines are rate-limited")
struct KDCLogTests {
    @Test("at most 20 refused lines a second, then one summary line; other levels unlimited")
    func refusedRateLimit() {
        let clock = Seconds()
        let lines = Lines()
        let log = KDCLog(clock: .fixed(0), monotonic: { clock.now }) { lines.append($0, $1) }

        // A flood: 1,000 refusals within one second (0.5 ms apart).
        for i in 0..<1000 {
            log.refused("query \(i) refused")
            clock.advance(0.0005)
        }
        #expect(lines.matching("refused: ").count == 20)
        #expect(lines.matching("refused: ").first == "refused: query 0 refused")
        // Warnings, infos and errors are never held back, not even in a flood.
        for i in 0..<50 { log.info("info \(i)") }
        #expect(lines.matching("info: ").count == 50)

        // The next second: the summary comes first, then up to 20 refused lines again.
        clock.advance(0.6)
        for i in 0..<30 { log.refused("again \(i)") }
        #expect(lines.matching("warning: ") == ["warning: 980 refused requests not logged in the last second"])
        #expect(lines.matching("refused: again").count == 20)

        // The flood ends: the ten held back are reported with the next line of any level,
        // saying when that second ended.
        clock.advance(5)
        log.error("something else")
        let all = lines.all.withLock { $0 }
        #expect(all.suffix(2) == ["warning: 10 refused requests not logged in the second that ended 4 s ago", "error: something else"])

        // Quiet again: refused lines are logged one by one, no summary.
        let before = lines.count
        clock.advance(2)
        log.refused("single")
        #expect(lines.count == before + 1)
    }

    @Test("every copy of a KDCLog shares one limit")
    func sharedLimit() {
        let clock = Seconds()
        let lines = Lines()
        let log = KDCLog(clock: .fixed(0), monotonic: { clock.now }) { lines.append($0, $1) }
        let copies = (0..<5).map { _ in log }
        for copy in copies { for _ in 0..<10 { copy.refused("x") } }
        #expect(lines.matching("refused: ").count == 20)
    }
}
