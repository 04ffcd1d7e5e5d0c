import CTDNSKRS
import Synchronization
import TDNSCore
import TDNSKRS

// MARK: - Key changes of a context

/// What the key store changed through one context (every KRS_KEY_* callback the host got, or
/// would have got): the `key_changes` line of the status text. Counted per context, so a host
/// that reloads (a new context) starts again at zero, as operators know it from named.
final class KeyChangeCounts: Sendable {
    struct Counts: Sendable {
        var installed = 0
        var retired = 0
        var removed = 0
    }

    private let counts = Mutex(Counts())

    func count(_ kind: KeyStoreChange.Kind) {
        counts.withLock { c in
            switch kind {
            case .installed: c.installed += 1
            case .retired: c.retired += 1
            case .deleted: c.removed += 1
            }
        }
    }

    var current: Counts { counts.withLock { $0 } }
}

// MARK: - status.tdnskrs. text

/// The strings the server plugins serve as `status.tdnskrs.` TXT records, one per record
/// (krs_status_text). The same in named and knotd, so that operators read one format:
///
///     version=0.2.0
///     node_id=edge1.example.net. enrolled=yes listening=yes running=yes
///     last_distribution=ID result=installed confirmed=yes        (or last_distribution=none)
///     keys=2 keys_installed=2 notifies=3 fetches=2 refused=0
///     key_changes installed=2 retired=0 removed=0
///
/// Without a context only the version line. `listening` is the library's own NOTIFY listener
/// (no in knotd, whose port receives the NOTIFYs); `running` its worker. The node ID is cut
/// to 127 bytes, the distribution ID to 95 and the result to 31, so that the flags after them
/// survive; every string is at most 255 bytes (a TXT character-string).
enum StatusText {
    static let maxString = 255

    static func lines(version: String, status: JSONValue?, keyChanges: KeyChangeCounts.Counts?) -> [String] {
        var lines = ["version=\(version)"]
        guard let keyChanges else { return lines.map(clip) }
        guard let status, status.objectValue != nil else {
            lines.append("krs=status unavailable")
            return lines.map(clip)
        }
        let node = cut(status["node_id"]?.stringValue ?? "", 127)
        lines.append("node_id=\(node.isEmpty ? "-" : node) enrolled=\(yesNo(status["enrolled"])) "
            + "listening=\(yesNo(status["listening"])) running=\(yesNo(status["running"]))")
        if let last = status["distributions"]?.arrayValue?.first {
            lines.append("last_distribution=\(cut(last["id"]?.stringValue ?? "", 95)) "
                + "result=\(cut(last["result"]?.stringValue ?? "", 31)) confirmed=\(yesNo(last["confirmed"]))")
        } else {
            lines.append("last_distribution=none")
        }
        let counters = status["counters"]
        func counter(_ name: String) -> String { counters?[name]?.int64Value.map(String.init) ?? "-1" }
        let keys = status["keys"]?.arrayValue?.count ?? -1
        lines.append("keys=\(keys) keys_installed=\(counter("keys_installed")) notifies=\(counter("notifies")) "
            + "fetches=\(counter("fetches")) refused=\(counter("refused"))")
        lines.append("key_changes installed=\(keyChanges.installed) retired=\(keyChanges.retired) removed=\(keyChanges.removed)")
        return lines.map(clip)
    }

    private static func yesNo(_ value: JSONValue?) -> String {
        switch value?.boolValue {
        case true?: "yes"
        case false?: "no"
        case nil: "?"
        }
    }

    /// The first `limit` bytes of `s`, not splitting a UTF-8 sequence.
    static func cut(_ s: String, _ limit: Int) -> String {
        let utf8 = Array(s.utf8)
        guard utf8.count > limit else { return s }
        var end = limit
        while end > 0 && utf8[end] & 0xC0 == 0x80 { end -= 1 }
        return String(decoding: utf8[..<end], as: UTF8.self)
    }

    private static func clip(_ s: String) -> String { cut(s, maxString) }
}

/// Hands `lines` to C as one krs_free-able block: the `char *` array (with a NULL after the
/// last) followed by the NUL-terminated strings it points to. One block, so one krs_free
/// releases it all and no string can be freed or leaked on its own.
func deliver(
    lines: [String],
    to out: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    count outCount: UnsafeMutablePointer<Int>
) -> Int32 {
    let pointerBytes = (lines.count + 1) * MemoryLayout<UnsafeMutablePointer<CChar>?>.stride
    let textBytes = lines.reduce(0) { $0 + $1.utf8.count + 1 }
    guard let block = OutputBuffers.shared.allocate(byteCount: pointerBytes + textBytes) else { return KRS_ENOMEM }
    let array = block.bindMemory(to: UnsafeMutablePointer<CChar>?.self, capacity: lines.count + 1)
    var text = (block + pointerBytes).assumingMemoryBound(to: CChar.self)
    for (i, line) in lines.enumerated() {
        var n = 0
        for byte in line.utf8 {
            text[n] = CChar(bitPattern: byte)
            n += 1
        }
        text[n] = 0
        (array + i).initialize(to: text)
        text += n + 1
    }
    (array + lines.count).initialize(to: nil)
    out.pointee = array
    outCount.pointee = lines.count
    return KRS_OK
}

@c @implementation
public func krs_status_text(
    _ ctx: OpaquePointer?, _ outLines: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?,
    _ outCount: UnsafeMutablePointer<Int>?
) -> Int32 {
    outLines?.pointee = nil
    outCount?.pointee = 0
    guard let outLines, let outCount else { return KRS_EINVAL }
    let version = String(decoding: UnsafeRawBufferPointer(start: libraryVersion.utf8Start, count: libraryVersion.utf8CodeUnitCount), as: UTF8.self)
    guard let ctx else {
        return deliver(lines: StatusText.lines(version: version, status: nil, keyChanges: nil), to: outLines, count: outCount)
    }
    guard let context = contexts.lookup(ctx) else { return KRS_EINVAL }
    // The status the node renders for krs_status_json, read back here in Swift: the text
    // shows the same values, from one source.
    let status = try? JSONValue.parse(Array(context.node.statusJSON().utf8))
    let lines = StatusText.lines(version: version, status: status, keyChanges: context.keyChanges.current)
    return deliver(lines: lines, to: outLines, count: outCount)
}
