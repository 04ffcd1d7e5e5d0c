/// TDNSWire: the DNS wire format as the TDNS KDC and KRS speak it (PROTOCOL §2–§5, §10.6,
/// §11.4–§11.5, §12). Pure Swift: no crypto, no C, no Foundation.
///
/// - Primitives: ``WireReader`` (bounded, big-endian, must-consume-exactly sub-readers) and
///   ``WireWriter``.
/// - Open code points: ``RRType``, ``RRClass``, ``Opcode``, ``RCode``, ``EDNSOptionCode``.
/// - Names: ``DNSName`` (strict decompression, presentation text with escapes).
/// - Messages: ``DNSMessage`` with ``EDNS``, keeping the received bytes in ``ReceivedWire``.
/// - RDATA: ``CHUNKRecord``, ``ChunkOption``, ``KEYRecord``, ``DNSKEYRecord``, ``SIGRecord``,
///   ``GenericRData`` (RFC 3597).
/// - KDC/KRS messages: ``TDNSMessages``; SIG(0) plumbing: ``SIG0``.
///
/// Every parser is strict and bounded, throws `TDNSError` (`.malformed`, `.tooBig`) and never
/// traps on any input.
public enum TDNSWire {}
