import Foundation
import Tensors

/// Runs `produce` on a background thread, keeping up to `depth` results ready, so the consumer
/// (a training step) never waits on I/O unless the disk is slower than the step. Errors thrown by
/// `produce` are rethrown by `next()`; `nil` from `produce` ends the stream.
///
/// The producer (and the files it holds) is released on its own thread before the stream
/// reports its end, and `stop()` waits for the thread to finish: no HDF5 call can outlive the
/// consumer (at exit the library shuts down, and a late call would find it gone).
public final class Prefetcher<Item: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var ready: [Result<Item, Error>] = []
    private var finished = false, stopped = false, joined = false
    private var producer: (@Sendable () throws -> Item?)?
    private let exited = DispatchSemaphore(value: 0)
    private let depth: Int
    /// Seconds `next()` spent waiting for the producer (the "data-wait" of the timeline).
    public private(set) var waitSeconds = 0.0

    public init(depth: Int = 2, produce: @escaping @Sendable () throws -> Item?) {
        self.depth = max(1, depth)
        producer = produce
        let thread = Thread { [self] in
            HDF5File.silenceErrorStack()
            run()
            exited.signal()
        }
        thread.name = "transcriptile-prefetch"
        thread.start()
    }

    private func run() {
        defer {
            condition.lock()
            producer = nil
            finished = true
            condition.broadcast()
            condition.unlock()
        }
        while true {
            condition.lock()
            while ready.count >= depth && !stopped { condition.wait() }
            let (stop, produce) = (stopped, producer)
            condition.unlock()
            guard !stop, let produce else { return }
            let item: Result<Item, Error>?
            do { item = try produce().map { .success($0) } } catch { item = .failure(error) }
            guard let item else { return }  // the end of the stream
            condition.lock()
            ready.append(item)
            condition.broadcast()
            condition.unlock()
            if case .failure = item { return }  // an error ends the stream after it
        }
    }

    /// The next item, waiting for it if needed; nil at the end of the stream.
    public func next() throws -> Item? {
        let start = DispatchTime.now().uptimeNanoseconds
        condition.lock()
        defer { condition.unlock() }
        while ready.isEmpty && !finished { condition.wait() }
        waitSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        guard !ready.isEmpty else { return nil }
        let item = ready.removeFirst()
        condition.broadcast()
        return try item.get()
    }

    /// Stops the producer after its current item and waits (up to a minute) for its thread to end.
    public func stop() {
        condition.lock()
        stopped = true
        let join = !joined
        joined = true
        condition.broadcast()
        condition.unlock()
        if join { _ = exited.wait(timeout: .now() + 60) }
    }

    deinit { stop() }
}

/// One worker's share of a global batch of patients: normalised RNA, cancer types, survival.
public struct PatientBatch: SampleBatch {
    public var patients: [Int]
    /// [patients × genes], normalised.
    public var expression: [Float]
    public var cancerTypes: [Int]
    public var survivalDays: [Float]
    public var events: [Bool]
    public var share: BatchShare
    public var count: Int { patients.count }
}

/// One worker's share of a global batch of tiles: pixels, their patients and cancer types.
public struct TileBatch: SampleBatch {
    public var tiles: [Int]
    /// [tiles × size × size × 3] RGB bytes.
    public var pixels: [UInt8]
    public var patients: [Int]
    public var cancerTypes: [Int]
    public var share: BatchShare
    public var count: Int { tiles.count }
}

/// One worker's share of a global batch of spatial spots: each spot's tile window and its
/// expression (as stored: counts, not normalised — the task decides how).
public struct SpotBatch: SampleBatch {
    public var spots: [Int]
    /// The tile each spot lies on, and its pixels [spots × size × size × 3].
    public var tiles: [Int]
    public var pixels: [UInt8]
    /// [spots × genes].
    public var expression: [Float]
    public var patients: [Int]
    public var share: BatchShare
    public var count: Int { spots.count }
}

/// One worker's share of a global batch of patients with their bags of tiles, packed: the
/// tiles of row r are `tiles[offsets[r]..<offsets[r + 1]]` (pixels likewise, per tile), so a
/// micro-batch of bags is one tensor plus offsets.
public struct BagBatch: SampleBatch {
    public var patients: [Int]
    /// [patients × genes], normalised.
    public var expression: [Float]
    public var cancerTypes: [Int]
    public var survivalDays: [Float]
    public var events: [Bool]
    public var tiles: [Int]
    /// [tiles × size × size × 3] RGB bytes, bag after bag.
    public var pixels: [UInt8]
    /// count + 1 ascending offsets into `tiles`.
    public var offsets: [Int]
    public var share: BatchShare
    public var count: Int { patients.count }

    /// The tiles of rows `rows`, as a range of `tiles`.
    public func tileRange(_ rows: Range<Int>) -> Range<Int> { offsets[rows.lowerBound]..<offsets[rows.upperBound] }
}

/// Which tiles of a patient's bag a batch carries: all of them up to `cap`; beyond it `cap`
/// drawn without replacement, keyed by (seed, epoch, patient) so that every worker count and
/// every resume picks the same ones. Kept in tile order.
public struct BagSampling: Codable, Equatable, Sendable {
    public var cap: Int
    public var seed: UInt64

    public init(cap: Int, seed: UInt64) { (self.cap, self.seed) = (cap, seed) }

    public func tiles(_ all: [Int], patient: Int, epoch: Int) -> [Int] {
        guard all.count > cap else { return all }
        let key = RandomKey(seed: seed, stream: RandomStream.bagSubsample, step: UInt32(truncatingIfNeeded: epoch),
                            sample: UInt32(truncatingIfNeeded: patient))
        return permutation(all.count, key: key).prefix(cap).sorted().map { all[$0] }
    }
}

/// Feeds one worker: the global order comes from the sampler (the same on every worker), the
/// worker reads only its share of each global batch, on a background thread with its own
/// read-only reader (so files are opened after MPI starts, by the thread that reads them).
/// `subset` holds the samples' global indices (patients, tiles or spots: `CohortReader.samples`).
public enum CohortLoader {
    /// Patients `subset` (e.g. the training split) in global batches of `sampler.globalBatch`.
    public static func patients(directory: URL, subset: [Int], sampler: EpochSampler, normalizer: ExpressionNormalizer?,
                                rank: Int, workers: Int, steps: Int, depth: Int = 2) -> Prefetcher<PatientBatch> {
        stream(directory: directory, subset: subset, sampler: sampler, rank: rank, workers: workers, steps: steps, depth: depth) {
            reader, state, patients, share in
            let (expression, types, survival) = try patientColumns(reader, state, patients, normalizer)
            return PatientBatch(patients: patients, expression: expression, cancerTypes: types,
                                survivalDays: survival.days, events: survival.events, share: share)
        }
    }

    /// Tiles `subset` (global tile indices, e.g. those of training patients).
    public static func tiles(directory: URL, subset: [Int], sampler: EpochSampler, rank: Int, workers: Int, steps: Int,
                             depth: Int = 2) -> Prefetcher<TileBatch> {
        stream(directory: directory, subset: subset, sampler: sampler, rank: rank, workers: workers, steps: steps, depth: depth) {
            reader, state, tiles, share in
            let owners = try state.cached("tile patients") { try reader.tilePatients() }
            let types = try state.cached("cancer types") { try reader.cancerTypes() }
            let patients = tiles.map { owners[$0] }
            return TileBatch(tiles: tiles, pixels: try pixels(reader, tiles), patients: patients, cancerTypes: patients.map { types[$0] }, share: share)
        }
    }

    /// Spots `subset` (global spot indices), each with its tile's pixels.
    public static func spots(directory: URL, subset: [Int], sampler: EpochSampler, rank: Int, workers: Int, steps: Int,
                             depth: Int = 2) -> Prefetcher<SpotBatch> {
        stream(directory: directory, subset: subset, sampler: sampler, rank: rank, workers: workers, steps: steps, depth: depth) {
            reader, state, spots, share in
            let spotTiles = try state.cached("spot tiles") { try reader.spotTiles() }
            let owners = try state.cached("tile patients") { try reader.tilePatients() }
            let tiles = spots.map { spotTiles[$0] }
            return SpotBatch(spots: spots, tiles: tiles, pixels: try pixels(reader, tiles), expression: try reader.spotExpression(spots),
                             patients: tiles.map { owners[$0] }, share: share)
        }
    }

    /// Patients `subset` (those with tiles) with their bags, subsampled by `bags`.
    public static func bags(directory: URL, subset: [Int], sampler: EpochSampler, bags: BagSampling, normalizer: ExpressionNormalizer?,
                            rank: Int, workers: Int, steps: Int, depth: Int = 2) -> Prefetcher<BagBatch> {
        stream(directory: directory, subset: subset, sampler: sampler, rank: rank, workers: workers, steps: steps, depth: depth) {
            reader, state, patients, share in
            let byPatient = try state.cached("tiles by patient") { () -> [Int: [Int]] in
                Dictionary(grouping: try reader.tilePatients().enumerated(), by: \.element).mapValues { $0.map(\.offset) }
            }
            let (expression, types, survival) = try patientColumns(reader, state, patients, normalizer)
            var tiles = [Int](), offsets = [0]
            for patient in patients {
                tiles += bags.tiles(byPatient[patient] ?? [], patient: patient, epoch: share.epoch)
                offsets.append(tiles.count)
            }
            return BagBatch(patients: patients, expression: expression, cancerTypes: types, survivalDays: survival.days, events: survival.events,
                            tiles: tiles, pixels: try pixels(reader, tiles), offsets: offsets, share: share)
        }
    }

    /// Normalised expression, cancer types and survival (empty when not recorded) of `patients`.
    private static func patientColumns(_ reader: CohortReader, _ state: LoaderState, _ patients: [Int], _ normalizer: ExpressionNormalizer?)
        throws -> ([Float], [Int], (days: [Float], events: [Bool])) {
        var expression = try reader.expression(patients)
        normalizer?.apply(&expression)
        let types = try state.cached("cancer types") { try reader.cancerTypes() }
        let survival = try state.cached("survival") { try reader.survival() ?? ([], []) }
        return (expression, patients.map { types[$0] },
                (survival.days.isEmpty ? [] : patients.map { survival.days[$0] }, survival.events.isEmpty ? [] : patients.map { survival.events[$0] }))
    }

    private static func pixels(_ reader: CohortReader, _ tiles: [Int]) throws -> [UInt8] {
        var pixels = [UInt8]()
        for tile in tiles { pixels += try reader.tile(tile) }
        return pixels
    }

    /// The shared producer: the next global batch, this worker's micro-batches mapped through
    /// `subset`, turned into an item by `load`.
    private static func stream<Item: Sendable>(
        directory: URL, subset: [Int], sampler: EpochSampler, rank: Int, workers: Int, steps: Int, depth: Int,
        _ load: @escaping @Sendable (CohortReader, LoaderState, [Int], BatchShare) throws -> Item
    ) -> Prefetcher<Item> {
        // An invariant of the callers, which build the sampler over this very subset.
        precondition(sampler.samples == subset.count, "the sampler must range over the subset")
        let state = LoaderState(sampler: sampler, steps: steps)
        return Prefetcher(depth: depth) {
            guard let batch = state.nextGlobalBatch() else { return nil }
            let runs = state.sampler.microBatches(ofBatch: batch.indices.count, rank: rank, workers: workers)
            let positions = runs.flatMap { $0 }
            let start = runs.first?.lowerBound ?? 0
            let share = BatchShare(batchSize: batch.indices.count, microBatches: runs.map { ($0.lowerBound - start)..<($0.upperBound - start) },
                                   positions: positions, epoch: batch.epoch, cursor: batch.cursor)
            return try load(try state.reader(directory), state, positions.map { subset[batch.indices[$0]] }, share)
        }
    }
}

/// The producer thread's state: the sampler, the step budget, the reader and cached columns.
private final class LoaderState: @unchecked Sendable {
    var sampler: EpochSampler
    var remaining: Int
    private var openReader: CohortReader?
    private var cache: [String: Any] = [:]

    init(sampler: EpochSampler, steps: Int) { (self.sampler, self.remaining) = (sampler, steps) }

    func nextGlobalBatch() -> (indices: [Int], epoch: Int, cursor: Int)? {
        guard remaining > 0 else { return nil }
        remaining -= 1
        let indices = sampler.nextBatch()
        return (indices, sampler.epoch, sampler.cursor)
    }

    func reader(_ directory: URL) throws -> CohortReader {
        if let openReader { return openReader }
        let reader = try CohortReader(directory: directory)
        openReader = reader
        return reader
    }

    func cached<T>(_ key: String, _ load: () throws -> T) throws -> T {
        if let value = cache[key] as? T { return value }
        let value = try load()
        cache[key] = value
        return value
    }
}
