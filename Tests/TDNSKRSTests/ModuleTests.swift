import Testing
@testable import TDNSKRS
@Test func krsModuleLoads() { _ = TDNSKRS.self }
