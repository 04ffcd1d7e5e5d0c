import Testing
import TDNSTestSupport

@testable import TDNSCore

@Suite("JSONValue")
struct JSONValueTests {
    func parse(_ text: String, maxDepth: Int = JSONValue.defaultMaxDepth) throws -> JSONValue {
        try JSONValue.parse(Array(text.utf8), maxDepth: maxDepth)
    }

    func expectMalformed(_ text: String, _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        expectCode(.malformed, comment, sourceLocation: sourceLocation) { _ = try parse(text) }
    }

    func expectMalformed(bytes: [UInt8], _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        expectCode(.malformed, comment, sourceLocation: sourceLocation) { _ = try JSONValue.parse(bytes) }
    }

    @Test("a document with every kind of value, in order")
    func document() throws {
        let v = try parse(#" {"b":[1,-2.5e3,true,false,null],"a":{"x":"y"},"s":"\"\\\/\b\f\n\r\t\u00e9"} "#)
        #expect(v.keys == ["b", "a", "s"])
        #expect(v["b"]?[0]?.int64Value == 1)
        #expect(v["b"]?[1]?.numberText == "-2.5e3")
        #expect(v["b"]?[1]?.doubleValue == -2500)
        #expect(v["b"]?[2]?.boolValue == true)
        #expect(v["b"]?[3]?.boolValue == false)
        #expect(v["b"]?[4]?.isNull == true)
        #expect(v["b"]?[5] == nil)
        #expect(v["a"]?["x"]?.stringValue == "y")
        #expect(v["s"]?.stringValue == "\"\\/\u{08}\u{0C}\n\r\té")
        #expect(v["missing"] == nil)
        #expect(v.serializedString() == #"{"b":[1,-2.5e3,true,false,null],"a":{"x":"y"},"s":"\"\\/\b\f\n\r\té"}"#)
        #expect(try parse(v.serializedString()) == v)
    }

    @Test("scalars at the top level and empty containers")
    func scalars() throws {
        #expect(try parse("0") == .number("0"))
        #expect(try parse(#""""#) == .string(""))
        #expect(try parse("null") == .null)
        #expect(try parse("[]") == .array([]))
        #expect(try parse("{ }") == .object([]))
        #expect(try parse("[[],{}]") == .array([.array([]), .object([])]))
        #expect(try parse(" \t\r\n true \n") == .bool(true))
    }

    @Test("nesting limit: depth bombs fail cleanly")
    func depth() throws {
        let ok = String(repeating: "[", count: 32) + String(repeating: "]", count: 32)
        _ = try parse(ok)
        expectMalformed(String(repeating: "[", count: 33) + String(repeating: "]", count: 33), "33 levels")
        expectMalformed(String(repeating: "[", count: 1_000_000), "unclosed bomb")
        expectMalformed(String(repeating: #"{"a":"#, count: 100_000), "object bomb")
        // The limit is a parameter.
        _ = try parse(#"{"a":{"b":1}}"#, maxDepth: 2)
        expectCode(.malformed) { _ = try parse(#"{"a":{"b":{}}}"#, maxDepth: 2) }
        expectCode(.malformed) { _ = try parse("[]", maxDepth: 0) }
        _ = try parse("1", maxDepth: 0)
    }

    @Test("size limit is checked before parsing")
    func size() throws {
        let text = Array(#"{"a":"\#(String(repeating: "x", count: 100))"}"#.utf8)
        _ = try JSONValue.parse(text, maxSize: text.count)
        expectCode(.tooBig) { _ = try JSONValue.parse(text, maxSize: text.count - 1) }
        // Not even looked at: garbage over the limit is "too big", not "malformed".
        expectCode(.tooBig) { _ = try JSONValue.parse([UInt8](repeating: 0xFF, count: 20), maxSize: 10) }
        expectCode(.tooBig) { _ = try JSONValue.parse(text[...], maxSize: 10) }
    }

    @Test("duplicate member names are refused, compared byte for byte")
    func duplicates() throws {
        expectMalformed(#"{"a":1,"a":2}"#)
        expectMalformed(#"{"a":1,"b":{"c":1,"c":1}}"#, "nested")
        expectMalformed(#"{"a":1,"\u0061":2}"#, "escaped duplicate")
        expectMalformed(#"{"alg":"ECDH-ES","enc":"A256GCM","alg":"none"}"#)
        // Canonically equivalent but different bytes: distinct names (as a C library sees them).
        let v = try parse(#"{"\u00e9":1,"e\u0301":2}"#)
        #expect(v.keys?.count == 2)
        #expect(v["\u{e9}"]?.int64Value == 1)
        #expect(v["e\u{301}"]?.int64Value == 2)
        // Same name in different objects is fine.
        _ = try parse(#"[{"a":1},{"a":2}]"#)
    }

    @Test("surrogates: pairs combine, lone ones are refused")
    func surrogates() throws {
        #expect(try parse(#""\ud83d\ude00""#) == .string("😀"))
        #expect(try parse(#""\uD834\uDD1E""#) == .string("𝄞"))
        expectMalformed(#""\ud800""#, "lone high")
        expectMalformed(#""\udc00""#, "lone low")
        expectMalformed(#""\ud800\u0041""#, "high + non-surrogate")
        expectMalformed(#""\ud800\ud800""#, "high + high")
        expectMalformed(#""\ude00\ud83d""#, "reversed")
        expectMalformed(#""\ud83d x""#, "high then text")
        expectMalformed(#""\u12""#, "short escape")
        expectMalformed(#""\u12G4""#, "bad hex")
    }

    @Test("UTF-8 is validated")
    func utf8() throws {
        #expect(try JSONValue.parse([0x22, 0xC3, 0xA9, 0x22]) == .string("é"))
        #expect(try JSONValue.parse([0x22, 0xF0, 0x9F, 0x98, 0x80, 0x22]) == .string("😀"))
        #expect(try JSONValue.parse([0x22, 0xF4, 0x8F, 0xBF, 0xBF, 0x22]) == .string("\u{10FFFF}"))
        let bad: [[UInt8]] = [
            [0x22, 0xC0, 0x80, 0x22],              // overlong NUL
            [0x22, 0xC1, 0xBF, 0x22],              // overlong
            [0x22, 0xE0, 0x80, 0x80, 0x22],        // overlong 3-byte
            [0x22, 0xED, 0xA0, 0x80, 0x22],        // encoded surrogate U+D800
            [0x22, 0xF0, 0x80, 0x80, 0x80, 0x22],  // overlong 4-byte
            [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],  // above U+10FFFF
            [0x22, 0xF5, 0x80, 0x80, 0x80, 0x22],  // invalid lead
            [0x22, 0x80, 0x22],                    // lone continuation
            [0x22, 0xC3, 0x22],                    // truncated
            [0x22, 0xE2, 0x82, 0x22],              // truncated 3-byte
            [0x22, 0xFF, 0x22],
            [0xC3, 0xA9],                          // non-ASCII outside a string
            [0xEF, 0xBB, 0xBF, 0x7B, 0x7D],        // BOM
        ]
        for b in bad { expectMalformed(bytes: b, "\(b)") }
    }

    @Test("trailing data and other syntax errors")
    func syntax() {
        for text in [
            "", " ", "{} x", "1 2", "{}}", "[]]", "{},", "[1,]", "[,1]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "{'a':1}",
            "[1 2]", "{\"a\":1 \"b\":2}", "tru", "nul", "True", "NULL", "\"abc", "\"a\u{01}b\"", "\"tab\there\"", "\"\\x41\"",
            "\"\\'\"", "[\"a\"\"b\"]", "/* c */ 1", "1 // c", "\u{0C}1", "\u{A0}1", "{\"a\":1}\u{0}",
        ] {
            expectMalformed(text, "\(text.debugDescription)")
        }
    }

    @Test("number grammar and exact integers")
    func numbers() throws {
        for text in ["0", "-0", "1", "-1", "10", "1.5", "-1.25e-3", "1e10", "1E+2", "0.0", "0e0", "123456789012345678901234567890"] {
            #expect(try parse(text) == .number(text))
        }
        for text in ["01", "-01", "+1", ".5", "1.", "1.e5", "1e", "1e+", "-", "--1", "0x10", "NaN", "Infinity", "-Infinity", "1_000", "1.5.2", "١"] {
            expectMalformed(text, "\(text)")
        }
        #expect(try parse("9223372036854775807").int64Value == Int64.max)
        #expect(try parse("-9223372036854775808").int64Value == Int64.min)
        #expect(try parse("9223372036854775808").int64Value == nil)
        #expect(try parse("18446744073709551615").uint64Value == UInt64.max)
        #expect(try parse("18446744073709551616").uint64Value == nil)
        #expect(try parse("-1").uint64Value == nil)
        #expect(try parse("-0").int64Value == 0)
        #expect(try parse("1.0").int64Value == nil)
        #expect(try parse("1e3").int64Value == nil)
        #expect(try parse("42").intValue == 42)
        #expect(try parse("\"42\"").int64Value == nil)
        #expect(try parse("1e400").doubleValue == nil)
        #expect(JSONValue.integer(-17).serializedString() == "-17")
        #expect(JSONValue.integer(UInt64.max).serializedString() == "18446744073709551615")
    }

    @Test("serializer: member order, escapes, Go's HTML escaping")
    func serializer() {
        let jwk = JSONValue.object([
            ("use", .string("enc")), ("kty", .string("EC")), ("crv", .string("P-256")), ("alg", .string("ECDH-ES")),
        ])
        #expect(jwk.serializedString() == #"{"use":"enc","kty":"EC","crv":"P-256","alg":"ECDH-ES"}"#)
        let s = JSONValue.string("a\u{0}\u{1f}\u{7f}<>&\u{2028}\u{2029}é\"\\/")
        #expect(s.serializedString() == #""a\u0000\u001f\#u{7f}<>&\#u{2028}\#u{2029}é\"\\/""#)
        #expect(s.serializedString(escapeHTML: true) == #""a\u0000\u001f\#u{7f}\u003c\u003e\u0026\u2028\u2029é\"\\/""#)
        #expect(JSONValue.array([.null, .bool(true), .number("1.5"), .object([])]).serializedString() == "[null,true,1.5,{}]")
        // Round trip through the parser.
        #expect((try? JSONValue.parse(s.serialized(escapeHTML: true))) == s)
        #expect((try? JSONValue.parse(s.serialized())) == s)
    }

    @Test("equality is exact: order and bytes matter")
    func equality() {
        #expect(JSONValue.object([("a", .null), ("b", .null)]) != JSONValue.object([("b", .null), ("a", .null)]))
        #expect(JSONValue.string("\u{e9}") != JSONValue.string("e\u{301}"))
        #expect(JSONValue.number("1.0") != JSONValue.number("1"))
        #expect(JSONValue.array([.bool(true)]) == JSONValue.array([.bool(true)]))
    }
}
