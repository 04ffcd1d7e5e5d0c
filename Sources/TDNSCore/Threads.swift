#if canImport(Glibc)
import Glibc
#endif
import Synchronization

// The one thread and the one stop primitive of libtdnskrs. The library owns its threads
// (hosts such as named must not need to lend theirs), joins every one it starts, and stops
// everything a component runs through one token.

/// A component's stop request, seen by everything it runs: its threads' loops, network waits
/// (a client given the token notices it within ``pollSlice`` milliseconds and fails with
/// `.timeout`), sleeps between retries, and server tools it is waiting for (a tool the server
/// cannot answer while it unloads this very module, e.g. `knotc` during `knotc reload`).
///
/// A component has one token for its lifetime: ``stop()`` when it stops, ``reset()`` when it
/// starts again.
public final class StopToken: Sendable {
    /// How long, in milliseconds, a wait may go without looking at the token.
    public static let pollSlice: Int32 = 50

    private let flag = Atomic<Bool>(false)

    public init() {}

    /// Asks everything that watches this token to stop. Async-signal-safe (one atomic store).
    public func stop() { flag.store(true, ordering: .sequentiallyConsistent) }

    /// Clears the request: the component starts again.
    public func reset() { flag.store(false, ordering: .sequentiallyConsistent) }

    public var isStopped: Bool { flag.load(ordering: .sequentiallyConsistent) }

    /// Sleeps `seconds` in slices of at most ``pollSlice`` ms, returning early once stopped.
    /// Returns false when it was cut short.
    @discardableResult
    public func sleep(_ seconds: Double) -> Bool {
        guard seconds.isFinite else { return !isStopped }
        let end = MonotonicClock.now() + seconds
        while !isStopped {
            let left = end - MonotonicClock.now()
            guard left > 0 else { return true }
            usleep(UInt32(min(left, Double(Self.pollSlice) / 1000) * 1_000_000))
        }
        return false
    }
}

/// A joinable POSIX thread running a Swift closure; joined (or, if it may still be busy in a
/// handler when its owner gives up waiting, detached) exactly once — a thread neither joined
/// nor detached when this object goes away is detached then, so none leaks.
///
/// The new thread blocks all asynchronous signals: named and knotd handle signals in threads of
/// their own (sigwait), and a library thread must never receive them. Synchronous fault signals
/// stay unblocked so that a crash still reaches the host's handler.
public final class JoinableThread: Sendable {
    /// Written once in init; read afterwards only. (pthread_t is an integer on Linux; kept as
    /// one so that the class is Sendable without a lock around it.)
    private let handle: UInt
    /// Set once joined or detached.
    private let settled = Atomic<Bool>(false)

    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    /// Starts the thread.
    ///
    /// - Parameter stackSize: bytes of stack; nil for the system default (8 MiB on Linux), which
    ///   handler threads keep since handlers may run deep crypto code.
    /// - Throws: `.internalFailure` when the system has no thread to give.
    public init(stackSize: Int? = nil, _ body: @escaping @Sendable () -> Void) throws(TDNSError) {
        var blocked = sigset_t()
        sigfillset(&blocked)
        for signal in [SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS] {
            sigdelset(&blocked, signal)
        }
        var previous = sigset_t()
        pthread_sigmask(SIG_SETMASK, &blocked, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }

        var attributes = pthread_attr_t()
        guard pthread_attr_init(&attributes) == 0 else { throw .internalFailure("cannot start a thread (attributes)") }
        defer { pthread_attr_destroy(&attributes) }
        if let stackSize { _ = pthread_attr_setstacksize(&attributes, max(stackSize, Int(PTHREAD_STACK_MIN))) }

        let argument = Unmanaged.passRetained(Body(body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, &attributes, { argument in
            guard let argument else { return nil }
            Unmanaged<Body>.fromOpaque(argument).takeRetainedValue().run()
            return nil
        }, argument)
        guard rc == 0 else {
            Unmanaged<Body>.fromOpaque(argument).release()
            throw .internalFailure("cannot start a thread (error \(rc))")
        }
        handle = UInt(thread)
    }

    /// Whether the caller is this thread (which must never join itself).
    public var isCurrent: Bool { pthread_equal(pthread_t(handle), pthread_self()) != 0 }

    /// Waits for the thread to end. A second call, a call after ``detach()`` and a call from
    /// the thread itself return at once.
    public func join() {
        guard !isCurrent, settle() else { return }
        pthread_join(pthread_t(handle), nil)
    }

    /// Lets the thread end on its own (it may be stuck in a handler); its resources are
    /// released when it does.
    public func detach() {
        guard settle() else { return }
        pthread_detach(pthread_t(handle))
    }

    private func settle() -> Bool {
        !settled.exchange(true, ordering: .acquiringAndReleasing)
    }

    deinit { detach() }
}
