import Foundation
import Tensors

/// What a task's sampler counts (DESIGN §5). Every unit belongs to one patient, so the split,
/// made by patient, never lets a patient's tiles or spots cross from training into evaluation.
public enum SampleUnit: String, Codable, Sendable, CaseIterable {
    /// A patient's bulk RNA profile.
    case patient
    /// One tile, with its patient.
    case tile
    /// One spatial spot: a tile window and that spot's expression.
    case spot
    /// A patient with the bag of their tiles (variable size, capped), and their RNA.
    case bag

    /// Plural, for messages ("the training split has no tiles").
    public var plural: String { self == .patient ? "patients" : self == .bag ? "patients with tiles" : "\(rawValue)s" }
}

/// A worker's part of one global batch, whatever the unit: which micro-batches it runs, each
/// sample's place in the global batch, and the sampler's position after the batch.
public struct BatchShare: Sendable, Equatable {
    /// Samples in the whole global batch (over all workers).
    public var batchSize: Int
    /// This worker's micro-batches, as row ranges of its share.
    public var microBatches: [Range<Int>]
    /// Each row's position in the global batch (a worker-independent key for randomness).
    public var positions: [Int]
    /// The sampler state after this batch (what a checkpoint records).
    public var epoch: Int, cursor: Int
}

/// A batch a loader yields for one worker: its share and how many samples it holds.
public protocol SampleBatch: Sendable {
    var share: BatchShare { get }
    /// Samples in this worker's share (rows of the batch).
    var count: Int { get }
}

extension CohortReader {
    /// The samples of `patients` counted as `unit`: global patient, tile or spot indices in
    /// ascending order. Bags are the patients that have at least one tile.
    public func samples(_ unit: SampleUnit, of patients: [Int]) throws -> [Int] {
        switch unit {
        case .patient:
            return patients.sorted()
        case .bag:
            let withTiles = Set(try tilePatients())
            return patients.filter(withTiles.contains).sorted()
        case .tile:
            let wanted = Set(patients)
            return try tilePatients().indices(where: wanted.contains)
        case .spot:
            let wanted = Set(patients), owners = try tilePatients()
            return try spotTiles().indices { wanted.contains(owners[$0]) }
        }
    }
}

extension Array {
    /// The indices of the elements that satisfy `predicate`, ascending.
    fileprivate func indices(where predicate: (Element) throws -> Bool) rethrows -> [Int] {
        try indices.filter { try predicate(self[$0]) }
    }
}
