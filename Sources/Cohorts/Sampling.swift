import Foundation
import Tensors

/// Patient-level train/validation/test split, stratified by cancer type: within each type the
/// patients are shuffled by `seed` and cut by the fractions (largest remainders), so every type
/// appears in each part in proportion. Recorded in the run plan.
public struct DataSplit: Codable, Equatable, Sendable {
    public var train: [Int], validation: [Int], test: [Int]

    public init(train: [Int], validation: [Int], test: [Int]) { (self.train, self.validation, self.test) = (train, validation, test) }

    public init(cancerTypes: [Int], fractions: (train: Double, validation: Double), seed: UInt64) {
        // Cannot fire from a config: RunConfig.problems() refuses the same fractions first.
        precondition(fractions.train > 0 && fractions.validation >= 0 && fractions.train + fractions.validation <= 1, "bad split fractions \(fractions)")
        var train = [Int](), validation = [Int](), test = [Int]()
        for type in Set(cancerTypes).sorted() {
            let members = cancerTypes.indices.filter { cancerTypes[$0] == type }
            let order = permutation(members.count, key: RandomKey(seed: seed, stream: RandomStream.split, step: UInt32(truncatingIfNeeded: type), sample: 0))
            let nTrain = Int((Double(members.count) * fractions.train).rounded())
            let nValidation = min(members.count - nTrain, Int((Double(members.count) * fractions.validation).rounded()))
            for (position, index) in order.enumerated() {
                let patient = members[index]
                if position < nTrain { train.append(patient) } else if position < nTrain + nValidation { validation.append(patient) } else { test.append(patient) }
            }
        }
        (self.train, self.validation, self.test) = (train.sorted(), validation.sorted(), test.sorted())
    }
}

/// A permutation of 0..<n from a counter-based key (Fisher–Yates over Philox uniforms): the same
/// key gives the same order on every machine.
public func permutation(_ n: Int, key: RandomKey) -> [Int] {
    var order = Array(0..<n)
    guard n > 1 else { return order }
    let uniforms = key.uniform(n)
    for i in stride(from: n - 1, to: 0, by: -1) {
        let j = min(i, Int(uniforms[i] * Double(i + 1)))
        order.swapAt(i, j)
    }
    return order
}

/// The global sample order (DESIGN §5): each epoch is a permutation of the samples keyed by
/// `(seed, epoch)` alone, cut into global batches; each global batch is cut into micro-batches
/// of `microBatch` samples, dealt to the workers as contiguous runs. The state is
/// `(epoch, cursor)`: the next global batch starts at `cursor`, so a run resumes at the exact
/// next sample on any number of workers. Since micro-batches do not depend on the number of
/// workers either, neither does any per-micro-batch computation.
public struct EpochSampler: Codable, Equatable, Sendable {
    public var samples: Int
    public var globalBatch: Int
    public var microBatch: Int
    public var seed: UInt64
    /// Drop the last incomplete batch of an epoch (a fixed batch size for every step).
    public var dropLast: Bool
    public var epoch = 0
    public var cursor = 0

    /// `microBatch` defaults to the whole global batch.
    public init(samples: Int, globalBatch: Int, microBatch: Int? = nil, seed: UInt64, dropLast: Bool = true) {
        // Cannot fire from a config: the coordinator's plan refuses an empty split and batch sizes < 1.
        precondition(samples > 0 && globalBatch > 0 && (microBatch ?? 1) > 0, "sampler needs samples and batch sizes")
        (self.samples, self.globalBatch, self.seed, self.dropLast) = (samples, globalBatch, seed, dropLast)
        self.microBatch = min(microBatch ?? globalBatch, globalBatch)
    }

    /// Global batches per epoch.
    public var batchesPerEpoch: Int { dropLast ? max(1, samples / globalBatch) : (samples + globalBatch - 1) / globalBatch }

    /// The order of the samples in `epoch`.
    public func order(epoch: Int) -> [Int] {
        permutation(samples, key: RandomKey(seed: seed, stream: RandomStream.epochOrder, step: UInt32(truncatingIfNeeded: epoch), sample: 0))
    }

    /// The next global batch (sample indices), advancing `(epoch, cursor)`.
    public mutating func nextBatch() -> [Int] {
        let size = min(globalBatch, samples)
        if cursor + (dropLast ? size : 1) > samples { epoch += 1; cursor = 0 }
        let batch = Array(order(epoch: epoch)[cursor..<min(samples, cursor + size)])
        cursor += batch.count
        return batch
    }

    /// Worker `rank`'s micro-batches of a global batch of `count` samples, as position ranges in
    /// the batch: whole micro-batches in contiguous runs whose lengths differ by at most one
    /// micro-batch. A worker may get none (more workers than micro-batches, or an epoch's short
    /// tail): it still joins the step's exchange, so no rank waits on a sample that is not coming.
    public func microBatches(ofBatch count: Int, rank: Int, workers: Int) -> [Range<Int>] {
        let total = (count + microBatch - 1) / microBatch
        let base = total / workers, extra = total % workers
        let first = rank * base + min(rank, extra)
        return (first..<(first + base + (rank < extra ? 1 : 0))).map { ($0 * microBatch)..<min(count, ($0 + 1) * microBatch) }
    }

    /// Each worker's positions in a global batch of `count` samples, in rank order: contiguous
    /// ranges that tile 0..<count (a worker without micro-batches has an empty one at the end).
    public func shares(ofBatch count: Int, workers: Int) -> [Range<Int>] {
        (0..<workers).map { rank in
            let runs = microBatches(ofBatch: count, rank: rank, workers: workers)
            guard let first = runs.first, let last = runs.last else { return count..<count }
            return first.lowerBound..<last.upperBound
        }
    }
}

/// RNA normalisation (SCIENCE.md): natural log of nonzero values (zeros stay 0), then z-score
/// with the training patients' per-gene mean and standard deviation (std 0 → 1). Stored with the run.
public struct ExpressionNormalizer: Codable, Equatable, Sendable {
    public var mean: [Float]
    public var std: [Float]
    /// Whether to take the log first (not for values already on a log or scaled scale).
    public var logNonzero: Bool

    enum CodingKeys: String, CodingKey { case mean, std, logNonzero = "log_nonzero" }

    /// Statistics over `patients` of the cohort, read in blocks of 256 rows.
    public init(reader: CohortReader, patients: [Int]) throws {
        let genes = reader.manifest.genes
        logNonzero = !["log", "scaled"].contains(reader.manifest.expressionKind)
        var sum = [Double](repeating: 0, count: genes), squares = [Double](repeating: 0, count: genes)
        for start in stride(from: 0, to: patients.count, by: 256) {
            var block = try reader.expression(Array(patients[start..<min(patients.count, start + 256)]))
            if logNonzero { Self.logOfNonzero(&block) }
            for (i, value) in block.enumerated() {
                sum[i % genes] += Double(value)
                squares[i % genes] += Double(value) * Double(value)
            }
        }
        let n = Double(max(patients.count, 1))
        mean = sum.map { Float($0 / n) }
        std = zip(sum, squares).map { s, q in
            let variance = max(0, q / n - (s / n) * (s / n))
            return variance > 1e-12 ? Float(variance.squareRoot()) : 1
        }
    }

    static func logOfNonzero(_ values: inout [Float]) {
        for i in values.indices where values[i] > 0 { values[i] = Foundation.log(values[i]) }
    }

    /// Normalises rows of `values` ([rows × genes]) in place.
    public func apply(_ values: inout [Float]) {
        if logNonzero { Self.logOfNonzero(&values) }
        let genes = mean.count
        let scale = std.map { 1 / $0 }
        values.withUnsafeMutableBufferPointer { rows in
            for start in stride(from: 0, to: rows.count, by: genes) {
                for g in 0..<genes { rows[start + g] = (rows[start + g] - mean[g]) * scale[g] }
            }
        }
    }
}
