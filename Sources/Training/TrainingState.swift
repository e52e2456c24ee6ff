import Checkpoints
import Distributed
import Foundation
import NN
import Optim
import Tensors

/// What a worker keeps beside the model's weights and how it moves them on: the optimizer (with
/// ZeRO-1 over this worker's partition only), early stopping's best weights, the EMA of the
/// weights; the running statistics' policy; and how all of it is saved, restored, and started
/// from another run (`train.init_from`).
final class TrainingState {
    let arena: ParameterArena
    private(set) var optimizer: any Optimizer
    let earlyStopping: EarlyStopping?
    /// The EMA of the weights this worker updates (`optimized`), if the run keeps one.
    let ema: ExponentialMovingAverage?
    private let emaStartStep: Int
    let groups: ParameterGroups
    private let workers: Communicator
    /// Each worker's partition of the arena: its checkpoint slice, and with ZeRO-1 the elements
    /// whose optimizer state (and EMA) it keeps and updates.
    let partition: [Range<Int>]
    /// The elements this worker's optimizer covers: its partition (ZeRO-1) or all.
    let optimized: Range<Int>

    init(config: RunConfig, arena: ParameterArena, groups: ParameterGroups, workers: Communicator) {
        self.arena = arena
        self.workers = workers
        self.groups = groups
        optimizer = Self.optimizer(config.optimizer)
        earlyStopping = config.evaluation.patience > 0
            ? EarlyStopping(patience: config.evaluation.patience, minDelta: config.evaluation.minDelta, arena: arena) : nil
        partition = Communicator.partition(count: arena.count, parts: workers.size)
        optimized = config.exchange.zeroStage == 1 ? partition[workers.rank] : 0..<arena.count
        ema = config.train.ema.decay > 0 ? ExponentialMovingAverage(of: arena.values.slice(rows: optimized), decay: config.train.ema.decay) : nil
        emaStartStep = config.train.ema.startStep
    }

    /// The optimizer a config names.
    static func optimizer(_ o: RunConfig.Optimizer) -> any Optimizer {
        switch o.name {
        case "sgd": SGD(momentum: o.momentum, weightDecay: o.weightDecay)
        case "adam": Adam(beta1: o.beta1, beta2: o.beta2, epsilon: o.epsilon, weightDecay: o.weightDecay)
        default: Adam.adamW(beta1: o.beta1, beta2: o.beta2, epsilon: o.epsilon, weightDecay: o.weightDecay)
        }
    }

    /// The update of step `step` (numbered from 1) at learning rate `lr`, group by group, then
    /// the EMA, over this worker's elements.
    func update(step: Int, lr: Double) {
        optimizer.step(parameters: arena.values.slice(rows: optimized), gradients: arena.gradients.slice(rows: optimized), lr: lr,
                       runs: groups.runs(within: optimized))
        guard let ema else { return }
        let weights = arena.values.slice(rows: optimized)
        if step <= emaStartStep { ema.shadow.copyBlock(from: weights, axis: 0, at: 0, adding: false) } else { ema.update(from: weights) }
    }

    /// ZeRO-1: every worker updated its own partition; gathers the others'. Returns whether it did.
    func gatherPartitions() throws -> Bool {
        guard optimized.count < arena.count else { return false }
        try workers.allgather(inPlace: arena.values.buffer(Float.self), parts: partition)
        return true
    }

    /// Running statistics (BatchNorm) follow each worker's own batches; averaging them after
    /// every step keeps one set, the same on every worker, in evaluations and checkpoints.
    /// Returns whether there was anything to average.
    func averageBuffers() throws -> Bool {
        guard workers.size > 1, arena.buffers.count > 0 else { return false }
        try workers.allreduce(arena.buffers.buffer(Float.self), op: .average)
        return true
    }

    /// A flat arena of the training state as this worker holds it: elements `held` of an arena
    /// of `count` (all of it, except what ZeRO-1 partitions: the worker's share).
    struct StateArena {
        let name: String
        let values: Tensor
        let held: Range<Int>
        let count: Int
    }

    /// The training state a checkpoint holds: parameters, buffers (running statistics), early
    /// stopping's best weights, the optimizer's moments and the EMA.
    func arenas() -> [StateArena] {
        let whole = ([("parameters", arena.values)] + (arena.buffers.count > 0 ? [("buffers", arena.buffers)] : [])
            + (earlyStopping?.arenas ?? [])).map { StateArena(name: $0, values: $1, held: 0..<$1.count, count: $1.count) }
        let partitioned = optimizer.state(like: arena.values.slice(rows: optimized)) + (ema.map { [("ema", $0.shadow)] } ?? [])
        return whole + partitioned.map { StateArena(name: $0.name, values: $0.values, held: optimized, count: arena.count) }
    }

    /// The scalars a checkpoint holds beside the arenas.
    var scalars: [String: Double] {
        ["optimizer.step_count": Double(optimizer.stepCount)].merging(earlyStopping?.scalars ?? [:]) { $1 }
    }

    /// Loads every arena from `directory`: each worker decodes its own partition (only the
    /// frames that overlap it, whatever the number of workers that saved it, with ZeRO-1 or
    /// without), then the partitions of the arenas every worker holds whole are broadcast.
    /// Returns the sampler's position.
    func restore(from directory: URL) throws -> (epoch: Int, cursor: Int) {
        let reader = try CheckpointReader(directory: directory)
        for state in arenas() {
            guard let saved = reader.manifest.arenas.first(where: { $0.name == state.name }), saved.count == state.count else {
                let found = reader.manifest.arenas.map { "\($0.name) (\($0.count))" }.joined(separator: ", ")
                throw TrainingError.plan("checkpoint \(directory.path) does not fit this model: it has arenas \(found); this run needs '\(state.name)' of \(state.count) elements")
            }
            let buffer = state.values.buffer(Float.self)
            if state.held != 0..<state.count {
                try reader.read(arena: state.name, range: state.held, into: buffer)
                continue
            }
            let parts = Communicator.partition(count: state.count, parts: workers.size)
            try reader.read(arena: state.name, range: parts[workers.rank], into: UnsafeMutableBufferPointer(rebasing: buffer[parts[workers.rank]]))
            for (worker, part) in parts.enumerated() where !part.isEmpty {
                try workers.broadcast(UnsafeMutableBufferPointer(rebasing: buffer[part]), root: worker)
            }
        }
        // The coordinator's resume check bounds the step count (RunPlanner.resumePoint).
        optimizer.stepCount = reader.manifest.scalars["optimizer.step_count"].flatMap { Int(exactly: $0) } ?? 0
        earlyStopping?.restore(reader.manifest.scalars)
        return (reader.manifest.epoch, reader.manifest.cursor)
    }

    /// Starts from another run's weights (`train.init_from`, checked by the coordinator): every
    /// tensor whose name and shape match is loaded (the EMA's, when that run kept one), the
    /// others keep their initialisation. The EMA, if any, starts from the loaded weights.
    func initialize(from start: RunPlan.InitialWeights) throws {
        let reader = try CheckpointReader(directory: URL(fileURLWithPath: start.checkpoint))
        let source = reader.manifest.arenas.contains { $0.name == "ema" } ? "ema" : "parameters"
        for view in reader.manifest.tensors where start.loaded.contains(view.name) {
            let arenaName = view.arena == "parameters" ? source : view.arena
            guard let entry = (view.arena == "parameters" ? arena.entries : arena.bufferEntries).first(where: { $0.name == view.name }) else { continue }
            let target = view.arena == "parameters" ? arena.values : arena.buffers
            let count = entry.shape.reduce(1, *)
            try reader.read(arena: arenaName, range: view.offset..<(view.offset + count),
                            into: UnsafeMutableBufferPointer(rebasing: target.buffer(Float.self)[entry.offset..<(entry.offset + count)]))
        }
        ema?.shadow.copyBlock(from: arena.values.slice(rows: optimized), axis: 0, at: 0, adding: false)
    }
}
