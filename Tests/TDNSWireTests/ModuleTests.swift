import Testing
@testable import TDNSWire
@Test func wireModuleLoads() { _ = TDNSWire.self }
