import Testing
@testable import TDNSKRS

@Test("a fixed clock is fixed") func fixedClock() { #expect(KRSClock.fixed(42).now == 42) }
