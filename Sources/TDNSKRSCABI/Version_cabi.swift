import TDNSCore
import CTDNSKRS

/// The library version; bumped with every release (SemVer of the C API).
let libraryVersion: StaticString = "0.2.0"

@c @implementation
public func krs_version() -> UnsafePointer<CChar>? {
    staticCString(libraryVersion)
}

/// A C view of a string literal: literals live in read-only static storage and are
/// NUL-terminated, so the pointer stays valid for the life of the process.
func staticCString(_ s: StaticString) -> UnsafePointer<CChar> {
    UnsafeRawPointer(s.utf8Start).assumingMemoryBound(to: CChar.self)
}
