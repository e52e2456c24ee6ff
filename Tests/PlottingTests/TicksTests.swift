import Plotting
import XCTest

/// Nice ticks (1-2-5 × 10^k), padded ranges and labels, including ranges no data should break.
final class TicksTests: XCTestCase {
    func testOddRangeGetsRoundSteps() {
        XCTAssertEqual(Ticks.linear(25.8, 48.2, target: 5), [30, 35, 40, 45])
        XCTAssertEqual(Ticks.linear(-8.45, 199.45, target: 5), [0, 50, 100, 150])
    }

    func testUnitRangeTicksAndLabels() {
        let ticks = Ticks.linear(0, 1, target: 6)
        XCTAssertEqual(ticks, [0, 0.2, 0.4, 0.6, 0.8, 1.0])
        XCTAssertEqual(Ticks.labels(ticks), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        // Tenths print exactly (3 × 0.1 would be 0.30000000000000004).
        XCTAssertEqual(Ticks.linear(0, 0.3, target: 4), [0, 0.1, 0.2, 0.3])
        XCTAssertEqual(Ticks.labels([0, 50, 100, 150]), ["0", "50", "100", "150"])
    }

    func testEveryStepIsOneTwoOrFiveTimesAPowerOfTen() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let low = Double.random(in: -1e6...1e6, using: &generator) * pow(10, Double(Int.random(in: -12...6, using: &generator)))
            let high = low + abs(low) * Double.random(in: 1e-6...10, using: &generator) + 1e-12
            let ticks = Ticks.linear(low, high, target: 5)
            XCTAssertGreaterThanOrEqual(ticks.count, 2, "\(low)…\(high)")
            XCTAssertLessThanOrEqual(ticks.count, 11, "\(low)…\(high)")
            guard ticks.count >= 2 else { continue }
            let step = ticks[1] - ticks[0], exponent = log10(step).rounded(.down), mantissa = step / pow(10, exponent)
            XCTAssertTrue([1.0, 2, 5, 10].contains { abs(mantissa - $0) < 1e-6 }, "step \(step) for \(low)…\(high)")
            XCTAssertTrue(ticks.allSatisfy { $0 >= low - step * 1e-6 && $0 <= high + step * 1e-6 }, "\(ticks) outside \(low)…\(high)")
        }
    }

    func testNegativeTinyAndHugeRanges() {
        XCTAssertEqual(Ticks.linear(-3.2, -0.4, target: 5), [-3, -2, -1])
        XCTAssertEqual(Ticks.labels([-3, -2, -1, 0]), ["−3", "−2", "−1", "0"])
        XCTAssertEqual(Ticks.labels([-0.5, 0, 0.5]), ["−0.5", "0.0", "0.5"])
        let tiny = Ticks.linear(1e-9, 5e-9, target: 5)
        XCTAssertEqual(tiny.count, 5)
        XCTAssertEqual(Ticks.labels(tiny).prefix(2), ["10⁻⁹", "2×10⁻⁹"])
        let huge = Ticks.linear(0, 3e6, target: 4)
        XCTAssertEqual(huge, [0, 1e6, 2e6, 3e6])
        XCTAssertEqual(Ticks.labels(huge), ["0", "10⁶", "2×10⁶", "3×10⁶"])
        let widest = Ticks.linear(-Double.greatestFiniteMagnitude, Double.greatestFiniteMagnitude, target: 5)
        XCTAssertFalse(widest.isEmpty)
        XCTAssertTrue(widest.allSatisfy(\.isFinite))
    }

    func testDegenerateAndNonFiniteInputs() {
        XCTAssertEqual(Ticks.linear(5, 5), [5])
        XCTAssertEqual(Ticks.linear(.nan, 1), [])
        XCTAssertEqual(Ticks.linear(0, .infinity), [])
        XCTAssertEqual(Ticks.linear(2, 1), [])
        XCTAssertEqual(Ticks.step(span: 0, target: 5), 0)
        XCTAssertEqual(Ticks.paddedRange([]), 0...1)
        XCTAssertEqual(Ticks.paddedRange([.nan, .infinity, -.infinity]), 0...1)
        XCTAssertEqual(Ticks.paddedRange([0]), -1...1)
        XCTAssertEqual(Ticks.paddedRange([5]), 4.5...5.5)
        let range = Ticks.paddedRange([.nan, 3, .infinity, 7])
        XCTAssertEqual(range.lowerBound, 2.8, accuracy: 1e-12)
        XCTAssertEqual(range.upperBound, 7.2, accuracy: 1e-12)
        let widest = Ticks.paddedRange([-Double.greatestFiniteMagnitude, Double.greatestFiniteMagnitude])
        XCTAssertTrue(widest.lowerBound.isFinite && widest.upperBound.isFinite)
        XCTAssertEqual(Ticks.labels([]), [])
        // Paddings that are none, negative or not finite leave the range as the data's.
        for padding in [0, -1, .nan, .infinity] {
            XCTAssertEqual(Ticks.paddedRange([-Double.greatestFiniteMagnitude, 1, Double.greatestFiniteMagnitude], padding: padding),
                           -Double.greatestFiniteMagnitude...Double.greatestFiniteMagnitude)
            XCTAssertEqual(Ticks.paddedRange([2, 3], padding: padding), 2...3)
        }
        XCTAssertEqual(Ticks.paddedRange([2, 3], padding: 1e300), -1e300...1e300)
        XCTAssertEqual(Ticks.paddedRange([2, 3], padding: 1e308), -Double.greatestFiniteMagnitude...Double.greatestFiniteMagnitude)
    }

    func testLogarithmicTicks() {
        XCTAssertEqual(Ticks.logarithmic(0.01, 10), [0.01, 0.1, 1, 10])
        XCTAssertEqual(Ticks.labels(Ticks.logarithmic(0.01, 10), perTick: true), ["0.01", "0.1", "1", "10"])
        XCTAssertEqual(Ticks.logarithmic(1.5, 30), [2, 5, 10, 20])
        XCTAssertGreaterThanOrEqual(Ticks.logarithmic(0.3, 0.9).count, 2)
        XCTAssertEqual(Ticks.logarithmic(1e-300, 1e300).count, 6)
        XCTAssertEqual(Ticks.logarithmic(0, 10), [])
        XCTAssertEqual(Ticks.logarithmic(-1, 10), [])
    }
}
