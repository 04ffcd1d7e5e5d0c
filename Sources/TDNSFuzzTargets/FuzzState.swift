#if canImport(Glibc)
import Glibc
#endif
import TDNSCore
import TDNSCrypto

/// The receiver environment the `json-manifest` and `dns-message` harnesses run
/// `KeyReceiver` / `KRSNode` in: the vector node `krs1.example.` under `kdc.example.`, the
/// vector keys, `key_store=none`, `max_skew=0`, and a private state directory (in /dev/shm when
/// there is one) that is emptied after every input and removed at exit.
enum FuzzState {
    static let nodeID = "krs1.example."
    static let controlZone = "kdc.example."

    /// Files the KRS writes into its state directory while processing; removed after each input
    /// so that no run depends on an earlier one (the lock file stays until exit).
    static let files = ["audit.log", "processed", "components.json", "pending"]

    private static let made: String? = {
        for base in ["/dev/shm", "/tmp"] {
            var template = Array("\(base)/tdns-fuzz-state-XXXXXX".utf8CString)
            let created = template.withUnsafeMutableBufferPointer { buf in buf.baseAddress.flatMap { mkdtemp($0) } }
            if created != nil {
                atexit { FuzzState.remove() }
                return template.withUnsafeBufferPointer { buf in buf.baseAddress.map { String(cString: $0) } }
            }
        }
        return nil
    }()

    static func directory() throws(TDNSError) -> String {
        guard let made else { throw TDNSError(.storage, "cannot create a state directory in /dev/shm or /tmp") }
        return made
    }

    static func keys() throws(TDNSError) -> FuzzKeys.Keys {
        switch FuzzKeys.keys {
        case .success(let k): return k
        case .failure(let e): throw e
        }
    }

    static func arguments(stateDirectory: String, keys: FuzzKeys.Keys) -> [String] {
        [
            "node_id=\(nodeID)", "control_zone=\(controlZone)", "state_dir=\(stateDirectory)", "key_store=none",
            "hpke_private_key=\(FuzzKeys.hpkeRecipientHex)", "jose_private_key=\(FuzzKeys.joseRecipientJWK)",
            "kdc_signing_pubkey=\(keys.kdcSigner.publicKey.jwkJSON())", "require_signature=no", "max_skew=0",
        ]
    }

    static func reset(_ dir: String) {
        for name in files { unlink("\(dir)/\(name)") }
    }

    static func remove() {
        guard let made else { return }
        reset(made)
        unlink("\(made)/lock")
        unlink("\(made)/pending.lock")
        rmdir(made)
    }
}
