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
                XCTAssertEqual(batch.share.microBatches, [0..<5])
                XCTAssertEqual(batch.share.positions, Array((rank * 5)..<(rank * 5 + 5)))
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
        let types = try CohortReader(directory: directory).cancerTypes()
        XCTAssertEqual(first.cancerTypes, first.patients.map { types[$0] })
        XCTAssertNotNil(try tiles.next())
        XCTAssertNil(try tiles.next())

        let missing = CohortLoader.patients(directory: directory.appendingPathComponent("nope"), subset: [0], sampler: EpochSampler(samples: 1, globalBatch: 1, seed: 0),
                                            normalizer: nil, rank: 0, workers: 1, steps: 1)
        XCTAssertThrowsError(try missing.next()) { XCTAssertTrue("\($0)".contains("cohort.json: missing"), "\($0)") }
    }

    /// Every unit of a split belongs to the split's patients: tiles and spots never cross.
    func testSamplesOfEveryUnitStayWithTheirPatientsSplit() throws {
        let spatial = FileManager.default.temporaryDirectory.appendingPathComponent("loader-spots-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: spatial) }
        _ = try TissueSimulator(patients: 20, cancerTypes: 2, genes: 12, tilesPerPatient: 3, tileSize: 8, spots: true, seed: 4).write(to: spatial, patientsPerShard: 7)
        let reader = try CohortReader(directory: spatial)
        let split = DataSplit(cancerTypes: try reader.cancerTypes(), fractions: (0.6, 0.2), seed: 1)
        let owners = try reader.tilePatients(), spotTiles = try reader.spotTiles()
        XCTAssertEqual(spotTiles.count, reader.spots)
        var tilesSeen = Set<Int>(), spotsSeen = Set<Int>()
        for part in [split.train, split.validation, split.test] {
            XCTAssertEqual(try reader.samples(.patient, of: part), part.sorted())
            XCTAssertEqual(try reader.samples(.bag, of: part), part.sorted(), "every simulated patient has tiles")
            let tiles = try reader.samples(.tile, of: part), spots = try reader.samples(.spot, of: part)
            XCTAssertEqual(tiles.count, 3 * part.count)
            XCTAssertTrue(tiles.allSatisfy { part.contains(owners[$0]) })
            XCTAssertTrue(spots.allSatisfy { part.contains(owners[spotTiles[$0]]) })
            XCTAssertTrue(tilesSeen.isDisjoint(with: tiles) && spotsSeen.isDisjoint(with: spots))
            tilesSeen.formUnion(tiles)
            spotsSeen.formUnion(spots)
        }
        XCTAssertEqual(tilesSeen.count, reader.tiles)
        XCTAssertEqual(spotsSeen.count, reader.spots)

        let spots = try reader.samples(.spot, of: split.train)
        let loader = CohortLoader.spots(directory: spatial, subset: spots, sampler: EpochSampler(samples: spots.count, globalBatch: 4, microBatch: 2, seed: 1),
                                        rank: 0, workers: 2, steps: 1)
        let batch = try XCTUnwrap(try loader.next())
        XCTAssertEqual(batch.count, 2)
        XCTAssertEqual(batch.expression, try reader.spotExpression(batch.spots))
        XCTAssertEqual(batch.expression.count, 2 * 12)
        XCTAssertEqual(batch.tiles, batch.spots.map { spotTiles[$0] })
        XCTAssertEqual(batch.pixels, try batch.tiles.flatMap { try reader.tile($0) })
    }

    /// Bags: a patient's tiles up to the cap; beyond it the same draw on every worker count and
    /// resume (keyed by seed, epoch, patient), another in another epoch; packed with offsets.
    func testBagsAreCappedDeterministicallyAndPackedWithOffsets() throws {
        let reader = try CohortReader(directory: directory)
        let byPatient = Dictionary(grouping: try reader.tilePatients().enumerated(), by: \.element).mapValues { $0.map(\.offset) }
        let sampling = BagSampling(cap: 3, seed: 7)
        let many = Array(100..<110)
        let picked = sampling.tiles(many, patient: 4, epoch: 0)
        XCTAssertEqual(picked.count, 3)
        XCTAssertEqual(picked, picked.sorted())
        XCTAssertEqual(sampling.tiles(many, patient: 4, epoch: 0), picked, "the same key, the same tiles")
        XCTAssertNotEqual((1...5).map { sampling.tiles(many, patient: 4, epoch: $0) }, Array(repeating: picked, count: 5), "other epochs draw others")
        XCTAssertEqual(sampling.tiles([1, 2], patient: 4, epoch: 0), [1, 2], "under the cap: all")

        let patients = Array(0..<12)
        let sampler = EpochSampler(samples: patients.count, globalBatch: 6, microBatch: 3, seed: 2)
        let bags = CohortLoader.bags(directory: directory, subset: patients, sampler: sampler, bags: BagSampling(cap: 1, seed: 7), normalizer: nil,
                                     rank: 1, workers: 2, steps: 1)
        let batch = try XCTUnwrap(try bags.next())
        XCTAssertEqual(batch.count, 3)
        XCTAssertEqual(batch.offsets, [0, 1, 2, 3], "a cap of 1 of each patient's 2 tiles")
        for (row, patient) in batch.patients.enumerated() {
            let tiles = Array(batch.tiles[batch.tileRange(row..<(row + 1))])
            XCTAssertEqual(tiles, BagSampling(cap: 1, seed: 7).tiles(byPatient[patient] ?? [], patient: patient, epoch: batch.share.epoch))
        }
        XCTAssertEqual(batch.pixels, try batch.tiles.flatMap { try reader.tile($0) })
        XCTAssertEqual(batch.expression.count, 3 * 24)
    }
}
