/// The release of libtdnskrs and its programs, for `*_build_info` metrics. Kept equal to
/// `krs_version()` (Sources/TDNSKRSCABI/Version_cabi.swift, a StaticString the C API returns
/// as a pointer); the bind9 suite compares the two.
public enum TDNSBuild {
    public static let version = "0.2.0"
}
