#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import TDNSCore

/// A joinable POSIX thread running a Swift closure. The library owns its threads (hosts such
/// as named must not need to lend theirs), and joins every one it starts.
final class JoinableThread: @unchecked Sendable {
    // Written once in init, read by join() from the thread that owns this object.
    private var handle: pthread_t

    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    init(_ run: @escaping @Sendable () -> Void) throws(TDNSError) {
        let body = Unmanaged.passRetained(Body(run)).toOpaque()
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { arg in
            guard let arg else { return nil }
            Unmanaged<Body>.fromOpaque(arg).takeRetainedValue().run()
            return nil
        }, body)
        guard rc == 0 else {
            Unmanaged<Body>.fromOpaque(body).release()
            throw .internalFailure("cannot start a thread (error \(rc))")
        }
        handle = tid
    }

    func join() {
        pthread_join(handle, nil)
    }
}

/// Sleeps in small steps until `seconds` passed or `stop()` returns true.
func interruptibleSleep(_ seconds: Double, until stop: () -> Bool) {
    var left = seconds
    while left > 0, !stop() {
        let step = min(left, 0.05)
        usleep(UInt32(step * 1_000_000))
        left -= step
    }
}

/// Set while a node stops: waits that could hold up the host end early (a server tool the
/// server cannot answer while it unloads this very module, e.g. `knotc` during `knotc reload`).
public final class StopSignal: Sendable {
    private let flag = Atomic<Bool>(false)
    public init() {}
    public var isSet: Bool { flag.load(ordering: .sequentiallyConsistent) }
    public func set(_ value: Bool) { flag.store(value, ordering: .sequentiallyConsistent) }
}
