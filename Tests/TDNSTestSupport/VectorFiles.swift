import TDNSCore
import Foundation
import Testing
import TDNSCore

/// Vector files in Tests/Vectors: copies of ../shared/vectors (made by running the Go code,
/// provenance inside each file) and the RFC 9180 subset (provenance inside the file).
public enum VectorFiles {
    public static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Vectors")

    public static func load(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: directory.appendingPathComponent(name))
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw VectorError("\(name) is not a JSON object")
        }
        return object
    }
}

public struct VectorError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension Dictionary where Key == String, Value == Any {
    public func string(_ key: String) throws -> String {
        guard let v = self[key] as? String else { throw VectorError("missing string \(key)") }
        return v
    }
    public func objects(_ key: String) throws -> [[String: Any]] {
        guard let v = self[key] as? [[String: Any]] else { throw VectorError("missing array \(key)") }
        return v
    }
    public func object(_ key: String) throws -> [String: Any] {
        guard let v = self[key] as? [String: Any] else { throw VectorError("missing object \(key)") }
        return v
    }
}

public func hexBytes(_ s: String) throws -> [UInt8] {
    var out: [UInt8] = []
    var chars = Array(s.utf8)
    guard chars.count % 2 == 0 else { throw VectorError("odd hex") }
    while !chars.isEmpty {
        guard let b = UInt8(String(decoding: chars.prefix(2), as: UTF8.self), radix: 16) else { throw VectorError("bad hex") }
        out.append(b)
        chars.removeFirst(2)
    }
    return out
}

public func base64Bytes(_ s: String) throws -> [UInt8] {
    guard let d = Data(base64Encoded: s) else { throw VectorError("bad base64") }
    return Array(d)
}

/// Asserts that `body` throws a `TDNSError` with `code`.
public func expectCode(
    _ code: TDNSError.Code,
    _ comment: Comment? = nil,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Void
) {
    let context = comment.map { "\($0): " } ?? ""
    do {
        try body()
        Issue.record("\(context)expected TDNSError \(code), nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as TDNSError {
        let message = "\(context)got \(error.code): \(error.reason)"
        #expect(error.code == code, "\(message)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("\(context)unexpected error type \(error)", sourceLocation: sourceLocation)
    }
}

