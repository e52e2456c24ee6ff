import Cohorts
import Foundation
import XCTest

/// Splits, the worker-count-independent sample order, normalisation and the prefetching loader,
/// on a simulated cohort in real HDF5.
final class LoaderTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("loader-\(UUID().uuidString)")
        _ = try TissueSimulator(patients: 45, cancerTypes: 3, genes: 24, tilesPerPatient: 2, tileSize: 16, seed: 2).write(to: directory, patientsPerShard: 16)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    func testStratifiedSplitIsDisjointProportionalAndSeeded() throws {
        let types = try CohortReader(directory: directory).cancerTypes()
        let split = DataSplit(cancerTypes: types, fractions: (0.6, 0.2), seed: 9)
        XCTAssertEqual(Set(split.train + split.validation + split.test), Set(0..<45))
        XCTAssertEqual(split.train.count + split.validation.count + split.test.count, 45)
        for type in 0..<3 {
            XCTAssertEqual(split.train.filter { types[$0] == type }.count, 9, "60 % of each type's 15")
            XCTAssertEqual(split.validation.filter { types[$0] == type }.count, 3)
        }
        XCTAssertEqual(split, DataSplit(cancerTypes: types, fractions: (0.6, 0.2), seed: 9))
        XCTAssertNotEqual(split, DataSplit(cancerTypes: types, fractions: (0.6, 0.2), seed: 10))
    }

    func testGlobalOrderIsIndependentOfWorkersAndResumesFromItsState() {
        var sampler = EpochSampler(samples: 23, globalBatch: 8, seed: 4)
        XCTAssertEqual(sampler.batchesPerEpoch, 2)
        let batches = (0..<7).map { _ in sampler.nextBatch() }
        XCTAssertEqual(Set(batches[0] + batches[1]).count, 16, "no repeats within an epoch")
        XCTAssertEqual(sampler.epoch, 3)
        XCTAssertNotEqual(batches[0], batches[2], "a new permutation each epoch")
        for workers in 1...5 {
            for (microBatch, batch) in zip([1, 3, 8, 2, 5, 4, 3], batches) {
                let sampler = EpochSampler(samples: 23, globalBatch: 8, microBatch: microBatch, seed: 4)
                let shares = (0..<workers).map { sampler.microBatches(ofBatch: batch.count, rank: $0, workers: workers) }
                XCTAssertEqual(shares.flatMap { $0 }.flatMap { $0 }, Array(batch.indices), "\(workers) workers together see the global batch in order")
                XCTAssertEqual(Set(shares.flatMap { $0 }), Set(sampler.microBatches(ofBatch: batch.count, rank: 0, workers: 1)),
                               "micro-batches do not depend on the number of workers")
                XCTAssertLessThanOrEqual(shares.map(\.count).max()! - shares.map(\.count).min()!, 1)
            }
        }
        var resumed = EpochSampler(samples: 23, globalBatch: 8, seed: 4)
        resumed.epoch = 1
        resumed.cursor = 8
        XCTAssertEqual((0..<4).map { _ in resumed.nextBatch() }, Array(batches[3...]), "(epoch, cursor) after three batches is the whole state")
    }

    func testNormalizerUsesLogOfNonzeroAndTrainingStatistics() throws {
        let reader = try CohortReader(directory: directory)
        let train = Array(0..<30)
        let normalizer = try ExpressionNormalizer(reader: reader, patients: train)
        XCTAssertTrue(normalizer.logNonzero, "counts are logged")
        var rows = try reader.expression(train)
        let raw = rows
        normalizer.apply(&rows)
        for gene in [0, 5, 23] {
            let column = train.indices.map { Double(rows[$0 * 24 + gene]) }
            let mean = column.reduce(0, +) / 30
            XCTAssertEqual(mean, 0, accuracy: 1e-4)
            XCTAssertEqual((column.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 30).squareRoot(), 1, accuracy: 1e-3)
        }
        let zero = raw.firstIndex(of: 0).map { ($0 % 24, rows[$0]) }
        if let (gene, value) = zero { XCTAssertEqual(value, -normalizer.mean[gene] / normalizer.std[gene], accuracy: 1e-5, "zeros stay 0 before the z-score") }
    }

    func testPrefetchingLoaderDeliversEachWorkersShare() throws {
        let split = DataSplit(cancerTypes: try CohortReader(directory: directory).cancerTypes(), fractions: (0.6, 0.2), seed: 1)
        let sampler = EpochSampler(samples: split.train.count, globalBatch: 10, microBatch: 5, seed: 3)
        var seen = [[Int]]()
        for rank in 0..<2 {
            let loader = CohortLoader.patients(directory: directory, subset: split.train, sampler: sampler, normalizer: nil,
                                               rank: rank, workers: 2, steps: 4)
            var patients = [Int]()
            while let batch = try loader.next() {
                XCTAssertEqual(batch.expression.count, batch.patients.count * 24)
                XCTAssertEqual(batch.survivalDays.count, batch.patients.count)
                XCTAssertEqual(batch.microBatches, [0..<5])
                XCTAssertEqual(batch.positions, Array((rank * 5)..<(rank * 5 + 5)))
                patients += batch.patients
            }
            seen.append(patients)
        }
        var reference = sampler
        let expected = (0..<4).flatMap { _ in reference.nextBatch().map { split.train[$0] } }
        let steps = (0..<4).map { Array(expected[($0 * 10)..<($0 * 10 + 10)]) }
        XCTAssertEqual(seen[0], steps.flatMap { $0[0..<5] }, "rank 0 reads the first half of each global batch")
        XCTAssertEqual(seen[1], steps.flatMap { $0[5..<10] }, "rank 1 the second half")

        let tiles = CohortLoader.tiles(directory: directory, subset: Array(0..<90), sampler: EpochSampler(samples: 90, globalBatch: 6, microBatch: 2, seed: 1),
                                       rank: 1, workers: 3, steps: 2)
        let first = try XCTUnwrap(try tiles.next())
        XCTAssertEqual(first.pixels.count, 2 * 16 * 16 * 3)
        XCTAssertEqual(first.patients, first.tiles.map { $0 / 2 })
        XCTAssertNotNil(try tiles.next())
        XCTAssertNil(try tiles.next())

        let missing = CohortLoader.patients(directory: directory.appendingPathComponent("nope"), subset: [0], sampler: EpochSampler(samples: 1, globalBatch: 1, seed: 0),
                                            normalizer: nil, rank: 0, workers: 1, steps: 1)
        XCTAssertThrowsError(try missing.next()) { XCTAssertTrue("\($0)".contains("cohort.json: missing"), "\($0)") }
    }
}
