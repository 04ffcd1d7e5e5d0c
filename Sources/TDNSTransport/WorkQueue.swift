#if canImport(Glibc)
import Glibc
#endif

/// One request waiting for a handler call, and where its answer goes.
struct ServerJob: Sendable {
    enum ReplyPath: Sendable {
        case udp(UDPEndpoint)
        case tcp(TCPConnection)
    }

    let request: [UInt8]
    let peer: SocketAddress
    let reply: ReplyPath
}

/// The queue between the I/O threads and the handler workers: FIFO, blocking pop, closable.
///
/// UDP jobs are bounded (`udpLimit`; beyond it a datagram is dropped, as a full socket buffer
/// would drop it). TCP jobs are bounded by the connection count times the per-connection
/// pipeline depth, which the TCP event loop enforces before it pushes.
///
/// A pthread mutex and condition variable rather than `Synchronization.Mutex`, because idle
/// workers must sleep until work or shutdown arrives. Both live on the heap so they never move.
final class WorkQueue: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    // Guarded by `mutex`.
    private var jobs: [ServerJob] = []
    private var head = 0
    private var queuedUDP = 0
    private var closed = false
    private let udpLimit: Int

    init(udpLimit: Int) {
        self.udpLimit = udpLimit
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        condition.deinitialize(count: 1)
        condition.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Appends a job; false when the queue is closed or (UDP only) full.
    func push(_ job: ServerJob) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if closed { return false }
        if case .udp = job.reply {
            if queuedUDP >= udpLimit { return false }
            queuedUDP += 1
        }
        jobs.append(job)
        pthread_cond_signal(condition)
        return true
    }

    /// The next job; blocks while the queue is empty; nil once the queue is closed.
    func pop() -> ServerJob? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !closed && head == jobs.count {
            pthread_cond_wait(condition, mutex)
        }
        if closed { return nil }
        let job = jobs[head]
        head += 1
        if head == jobs.count {
            jobs.removeAll(keepingCapacity: jobs.count <= 1024)
            head = 0
        } else if head >= 1024, head * 2 >= jobs.count {
            jobs.removeFirst(head)
            head = 0
        }
        if case .udp = job.reply { queuedUDP -= 1 }
        return job
    }

    /// Drops every queued job and wakes every waiting worker; pushes fail from now on.
    func close() {
        pthread_mutex_lock(mutex)
        closed = true
        jobs.removeAll()
        head = 0
        queuedUDP = 0
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }
}
