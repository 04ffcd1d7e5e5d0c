import CTDNSKRS
import TDNSCore
import TDNSKRS
import TDNSWire

/// What a host with its own DNS engine (knotd) does with a message it received.
enum NotifyVerdict: Equatable {
    /// Not a NOTIFY for the KRS: the host answers it as it would without the library.
    case notForKRS
    /// For the KRS, which has answered it (and queued the distribution when the answer is
    /// NOERROR): the host's response carries this RCODE and, when set, AA.
    case answer(rcode: UInt8, authoritative: Bool)
}

/// Whether a message is a NOTIFY for this node's KRS: a request (QR clear) with opcode
/// NOTIFY and exactly one question, of class IN, for the control zone or a name below it.
/// Everything else — other opcodes, other classes, other zones (NOTIFYs for zones the host
/// serves as a secondary), a node not enrolled (no control zone) — is the host's.
/// For the KRS's, the node answers (KRSNode.handleNotify: queue, pending record, SIG(0)
/// check) and the RCODE and AA of its answer are the verdict. Returns nil for bytes that
/// are not a DNS message.
func notifyVerdict(node: KRSNode, request: [UInt8]) -> NotifyVerdict? {
    guard let message = try? DNSMessage(wireEncoded: request) else { return nil }
    guard !message.flags.qr, message.opcode == .notify, message.questions.count == 1,
          let question = message.questions.first, question.rrClass == .in,
          let zone = node.settings.controlZone,
          question.name.isSubdomain(of: zone) else {
        return .notForKRS
    }
    // The node's own answer (built from the same message): header byte 2 holds AA (0x04),
    // byte 3 the RCODE in its low four bits. A NOTIFY answer never needs an extended RCODE.
    // (No answer only if it could not be serialized: the KRS's message all the same, and a
    // SERVFAIL makes the KDC send it again.)
    guard let answer = node.handleNotify(request), answer.count >= 12 else {
        return .answer(rcode: 2, authoritative: false)
    }
    return .answer(rcode: answer[3] & 0x0F, authoritative: answer[2] & 0x04 != 0)
}

/// Largest DNS message (RFC 1035 over TCP).
private let maxNotifyLength = 65535

@c @implementation
public func krs_notify_decide(
    _ ctx: OpaquePointer?, _ msg: UnsafePointer<UInt8>?, _ len: Int,
    _ outForKRS: UnsafeMutablePointer<Int32>?, _ outRCode: UnsafeMutablePointer<Int32>?, _ outAA: UnsafeMutablePointer<Int32>?
) -> Int32 {
    outForKRS?.pointee = 0
    outRCode?.pointee = 0
    outAA?.pointee = 0
    guard let context = contexts.lookup(ctx), let outForKRS, let outRCode, let outAA else { return KRS_EINVAL }
    switch bytesFromC(msg, len, limit: maxNotifyLength) {
    case .invalid:
        context.lastError.set("msg is NULL")
        return KRS_EINVAL
    case .tooBig:
        context.lastError.set("message longer than 65535 bytes")
        return KRS_EMALFORMED
    case .bytes(let request):
        switch notifyVerdict(node: context.node, request: request) {
        case nil:
            context.lastError.set("not a DNS message")
            return KRS_EMALFORMED
        case .notForKRS?:
            return KRS_OK
        case .answer(let rcode, let authoritative)?:
            outForKRS.pointee = 1
            outRCode.pointee = Int32(rcode)
            outAA.pointee = authoritative ? 1 : 0
            return KRS_OK
        }
    }
}
