/// TDNSWire: the DNS wire format as the TDNS KDC and KRS speak it (PROTOCOL §2–§5, §11–§12).
/// Pure Swift: no crypto, no C, no Foundation; every parser is strict and bounded.
public enum TDNSWire {}
