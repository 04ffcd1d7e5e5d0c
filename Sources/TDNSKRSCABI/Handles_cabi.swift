import Synchronization

/// Objects C holds by handle — the key handles of crypto.h (`void *`) and the contexts of
/// krs.h (`krs_context_t *`) — live here, one table per kind, all drawing their handles from
/// one counter.
///
/// A handle is a number dressed as a pointer, never dereferenced: it is only ever a key of
/// the table. So a stale, foreign or garbage handle, or a handle of another kind (a context
/// passed as a key), finds nothing and the entry point returns KRS_EINVAL instead of
/// crashing the host. Handles never repeat — the counter only grows, and refuses to wrap —
/// so a freed handle can never come back to life as some other object.
///
/// (The buffers the library hands out are another matter: they are real memory the caller
/// reads, so they are tracked by address in ``OutputBuffers``.)
final class HandleTable<Object: Sendable>: Sendable {
    private let live = Mutex<[UInt: Object]>([:])

    /// Registers `object`; nil only when the process has used up every handle (2^60 on a
    /// 64-bit system: not in practice).
    func add(_ object: Object) -> UInt? {
        guard let handle = HandleCounter.next() else { return nil }
        live.withLock { $0[handle] = object }
        return handle
    }

    func lookup(_ handle: UInt) -> Object? {
        live.withLock { $0[handle] }
    }

    /// Removes the handle when it is live and `matches` accepts its object (in one step, so
    /// two threads freeing the same handle release it once). Returns what was removed.
    @discardableResult
    func remove(_ handle: UInt, if matches: (Object) -> Bool = { _ in true }) -> Object? {
        live.withLock { table in
            guard let object = table[handle], matches(object) else { return nil }
            table[handle] = nil
            return object
        }
    }

    // The two pointer types handles travel as.
    func addRaw(_ object: Object) -> UnsafeMutableRawPointer? { add(object).flatMap { UnsafeMutableRawPointer(bitPattern: $0) } }
    func addOpaque(_ object: Object) -> OpaquePointer? { add(object).flatMap { OpaquePointer(bitPattern: $0) } }
    func lookup(_ handle: UnsafeMutableRawPointer?) -> Object? { handle.flatMap { lookup(UInt(bitPattern: $0)) } }
    func lookup(_ handle: OpaquePointer?) -> Object? { handle.flatMap { lookup(UInt(bitPattern: $0)) } }
    @discardableResult
    func remove(_ handle: UnsafeMutableRawPointer?, if matches: (Object) -> Bool = { _ in true }) -> Object? {
        handle.flatMap { remove(UInt(bitPattern: $0), if: matches) }
    }
    @discardableResult
    func remove(_ handle: OpaquePointer?, if matches: (Object) -> Bool = { _ in true }) -> Object? {
        handle.flatMap { remove(UInt(bitPattern: $0), if: matches) }
    }
}

/// The one source of handle values for every ``HandleTable``.
private enum HandleCounter {
    /// Handles start above the first pages (never NULL, never a small integer a caller might
    /// pass by mistake) and step by 16, so that they look like aligned pointers to tools.
    private static let first: UInt = 0x10000
    private static let step: UInt = 16
    private static let last = Mutex<UInt>(first)

    static func next() -> UInt? {
        last.withLock { value in
            let (next, overflow) = value.addingReportingOverflow(step)
            guard !overflow else { return nil }
            value = next
            return next
        }
    }
}
