import NN
import Tensors

/// Early stopping on the validation loss (`evaluation.patience`, `evaluation.min_delta`): keeps
/// the weights of the best evaluation and says when `patience` evaluations in a row failed to
/// beat it by more than `min_delta`. Every worker holds the same state (the validation loss is
/// all-reduced), and the state travels in checkpoints — the best weights as arenas, the
/// counters as scalars — so a resumed run stops where an uninterrupted one would.
final class EarlyStopping {
    let patience: Int, minDelta: Double
    private(set) var bestLoss = Double.infinity, bestStep = 0, stale = 0
    private let arena: ParameterArena
    private let bestParameters: Tensor, bestBuffers: Tensor

    init(patience: Int, minDelta: Double, arena: ParameterArena) {
        (self.patience, self.minDelta, self.arena) = (patience, minDelta, arena)
        bestParameters = Tensor(zeros: [arena.values.count])
        bestBuffers = Tensor(zeros: [arena.buffers.count])
        Self.copy(arena.values, to: bestParameters)
        Self.copy(arena.buffers, to: bestBuffers)
    }

    private static func copy(_ source: Tensor, to target: Tensor) {
        guard source.count > 0 else { return }
        target.buffer(Float.self).baseAddress!.update(from: source.buffer(Float.self).baseAddress!, count: source.count)
    }

    /// Records the validation loss at `step`; returns true when training should stop, after
    /// putting the best weights back into the arena.
    func update(loss: Double, step: Int) -> Bool {
        if loss < bestLoss - minDelta {
            (bestLoss, bestStep, stale) = (loss, step, 0)
            Self.copy(arena.values, to: bestParameters)
            Self.copy(arena.buffers, to: bestBuffers)
            return false
        }
        stale += 1
        guard stale >= patience else { return false }
        Self.copy(bestParameters, to: arena.values)
        Self.copy(bestBuffers, to: arena.buffers)
        return true
    }

    /// What a checkpoint holds of it.
    var arenas: [(name: String, values: Tensor)] {
        [("early_stopping.parameters", bestParameters)] + (bestBuffers.count > 0 ? [("early_stopping.buffers", bestBuffers)] : [])
    }

    /// The best loss is left out until there is one: before the first validation it is +∞,
    /// which JSON (the manifest) cannot hold; `restore` reads its absence as +∞.
    var scalars: [String: Double] {
        var scalars = ["early_stopping.best_step": Double(bestStep), "early_stopping.stale": Double(stale)]
        if bestLoss.isFinite { scalars["early_stopping.best_loss"] = bestLoss }
        return scalars
    }

    /// Restores the counters from a checkpoint's scalars (values out of range read as absent).
    func restore(_ scalars: [String: Double]) {
        bestLoss = scalars["early_stopping.best_loss"].flatMap { $0.isFinite ? $0 : nil } ?? .infinity
        bestStep = scalars["early_stopping.best_step"].flatMap { Int(exactly: $0) } ?? 0
        stale = scalars["early_stopping.stale"].flatMap { Int(exactly: $0) } ?? 0
    }
}
