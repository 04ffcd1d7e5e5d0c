#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing

@testable import TDNSCore

/// The one thread and stop primitive: JoinableThread and StopToken.
@Suite("Threads and stop tokens")
struct ThreadTests {
    @Test("a thread runs its body; join waits for it; a second join and a detach after it do nothing")
    func joinOnce() throws {
        let done = Atomic<Int>(0)
        let thread = try JoinableThread {
            usleep(20_000)
            done.store(1, ordering: .sequentiallyConsistent)
        }
        #expect(!thread.isCurrent)
        thread.join()
        let value = done.load(ordering: .sequentiallyConsistent)
        #expect(value == 1)
        thread.join()
        thread.detach()
    }

    @Test("a thread knows itself: it never joins itself")
    func isCurrent() throws {
        let sawItself = Atomic<Bool>(false)
        let box = Mutex<JoinableThread?>(nil)
        let started = Atomic<Bool>(false)
        let thread = try JoinableThread {
            while !started.load(ordering: .sequentiallyConsistent) { usleep(1000) }
            if let me = box.withLock({ $0 }) {
                sawItself.store(me.isCurrent, ordering: .sequentiallyConsistent)
                me.join()  // returns at once instead of deadlocking
            }
        }
        box.withLock { $0 = thread }
        started.store(true, ordering: .sequentiallyConsistent)
        thread.join()
        let saw = sawItself.load(ordering: .sequentiallyConsistent)
        #expect(saw)
    }

    @Test("a stop token ends another thread's sleep within a poll slice; reset clears it")
    func stopToken() throws {
        let token = StopToken()
        #expect(!token.isStopped)
        #expect(token.sleep(0.01), "a full sleep when nobody stops")
        let finished = Atomic<Bool>(false)
        let start = MonotonicClock.now()
        let sleeper = try JoinableThread {
            let completed = token.sleep(30)
            finished.store(!completed, ordering: .sequentiallyConsistent)
        }
        usleep(50_000)
        token.stop()
        sleeper.join()
        let cutShort = finished.load(ordering: .sequentiallyConsistent)
        #expect(cutShort)
        #expect(MonotonicClock.now() - start < 2)
        #expect(token.isStopped && !token.sleep(1))
        token.reset()
        #expect(!token.isStopped)
    }
}
