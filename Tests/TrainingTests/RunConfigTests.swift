import Foundation
import Training
import XCTest

final class RunConfigTests: XCTestCase {
    func testDefaultsFillEveryKeyNotGiven() throws {
        let effective = try ConfigLoader.load(yaml: "cohort: /data/sim\ntrain:\n  steps: 5\n", source: "run.yaml")
        XCTAssertEqual(effective.config.train.steps, 5)
        XCTAssertEqual(effective.config.train.globalBatch, 64)
        XCTAssertEqual(effective.config.exchange.algorithm, .mpi)
        XCTAssertTrue(effective.yaml.contains("global_batch: 64"), effective.yaml)
        XCTAssertTrue(effective.yaml.contains("hidden:"), "the task's model defaults are part of the effective config\n" + effective.yaml)
    }
}
