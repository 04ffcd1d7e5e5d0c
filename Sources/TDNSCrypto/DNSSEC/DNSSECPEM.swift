import TDNSCore

// Strict PEM (RFC 7468 §10 "strict" form, as Go's pem.Encode and OpenSSL write it) for the one
// label the KDC uses: `PRIVATE KEY` (unencrypted PKCS#8, PROTOCOL §10.2). Only whitespace may
// surround the single block; no headers; base64 lines of 1…76 characters; LF or CRLF.

enum DNSSECPEM {
    static let privateKeyLabel = "PRIVATE KEY"

    /// Decodes the DER inside the single `PRIVATE KEY` block of `text`. The caller owns (and
    /// zeroizes) the returned secret.
    ///
    /// - Throws: `.tooBig` over ``CryptoLimits/maxKeyText`` (before parsing); `.policy` for an
    ///   `ENCRYPTED PRIVATE KEY` block; `.malformed` for anything else that is not exactly one
    ///   well-formed `PRIVATE KEY` block.
    static func decodePrivateKey(_ text: [UInt8]) throws(TDNSError) -> [UInt8] {
        guard text.count <= CryptoLimits.maxKeyText else {
            throw .tooBig("PEM private key is \(text.count) bytes, limit \(CryptoLimits.maxKeyText)")
        }
        let begin = Array("-----BEGIN \(privateKeyLabel)-----".utf8)
        let end = Array("-----END \(privateKeyLabel)-----".utf8)
        let encrypted = Array("-----BEGIN ENCRYPTED PRIVATE KEY-----".utf8)
        let dashes = Array("-----".utf8)

        enum State { case before, body, after }
        var state = State.before
        var body: [UInt8] = []
        body.reserveCapacity(text.count)
        defer { zeroize(&body) }

        for rawLine in text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            let line = trimmingTrailingBlanks(rawLine)
            switch state {
            case .before:
                if isBlank(line) { continue }
                if line.elementsEqual(begin) {
                    state = .body
                } else if line.elementsEqual(encrypted) {
                    throw .policy("encrypted PKCS#8 private keys are not supported")
                } else if line.starts(with: Array("-----BEGIN ".utf8)) {
                    throw .malformed("PEM block is not a PKCS#8 \"\(privateKeyLabel)\"")
                } else {
                    throw .malformed("text before the PEM block")
                }
            case .body:
                if line.elementsEqual(end) {
                    state = .after
                } else if line.starts(with: dashes) {
                    throw .malformed("PEM END line does not match \"\(privateKeyLabel)\"")
                } else if line.isEmpty || line.count > 76 {
                    throw .malformed("PEM body line is empty or longer than 76 characters")
                } else {
                    body.append(contentsOf: line)
                }
            case .after:
                if isBlank(line) { continue }
                if line.starts(with: Array("-----BEGIN".utf8)) {
                    throw .malformed("more than one PEM block")
                }
                throw .malformed("text after the PEM block")
            }
        }
        guard state == .after else {
            throw .malformed(state == .before ? "no PEM block" : "PEM block has no END line")
        }
        guard !body.isEmpty else { throw .malformed("PEM block is empty") }
        let der: [UInt8]
        do {
            der = try Base64.decode(body)
        } catch {
            throw .malformed("PEM body is not valid base64")
        }
        return der
    }

    /// PEM text as Go's `pem.Encode` writes it: BEGIN line, base64 in 64-character lines,
    /// END line, each ended by LF. The caller owns the result (a secret for private keys).
    static func encode(label: String, der: [UInt8]) -> [UInt8] {
        var b64 = Base64.encodeBytes(der)
        defer { zeroize(&b64) }
        var out: [UInt8] = []
        out.reserveCapacity(b64.count + b64.count / 64 + 2 * (label.utf8.count + 20))
        out.append(contentsOf: "-----BEGIN \(label)-----\n".utf8)
        var i = 0
        while i < b64.count {
            let j = min(i + 64, b64.count)
            out.append(contentsOf: b64[i..<j])
            out.append(UInt8(ascii: "\n"))
            i = j
        }
        out.append(contentsOf: "-----END \(label)-----\n".utf8)
        return out
    }

    private static func isBlank(_ line: ArraySlice<UInt8>) -> Bool {
        line.allSatisfy { $0 == 0x20 || $0 == 0x09 }
    }

    /// Drops trailing spaces, tabs and one CR (RFC 7468 §2 allows trailing whitespace).
    private static func trimmingTrailingBlanks(_ line: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var hi = line.endIndex
        while hi > line.startIndex, [0x20, 0x09, 0x0d].contains(line[hi - 1]) { hi -= 1 }
        return line[line.startIndex..<hi]
    }
}
