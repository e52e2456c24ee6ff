#if canImport(Glibc)
import Glibc
#endif

/// How workers sum their gradients (DESIGN §4); the `exchange.algorithm` config key.
public enum ExchangeAlgorithm: String, CaseIterable, Codable, Sendable {
    /// `MPI_Iallreduce` per bucket, started as soon as the bucket's gradients are final.
    case mpi
    /// Summed in place in a shared-memory window inside each node, MPI between node leaders.
    case hierarchical
    /// Exact 64-bit fixed-point sums (on the hierarchical path): the result does not depend on
    /// how the micro-batches were spread over workers, so weights are bitwise identical on any
    /// number of workers.
    case reproducible
}

/// Sums a flat gradient arena over workers, bucket by bucket, overlapping the exchange with the
/// backward pass that produces it.
///
/// The exchange owns the arena (`gradients`): for `hierarchical` and `reproducible` it lives in
/// memory shared with the other ranks of the node, which is what lets them sum it in place.
/// Per step: `beginStep()`; for every micro-batch but the last, a backward pass then
/// `setAsideMicroBatch()`; the last backward pass, during which the caller reports each
/// parameter's gradient range as final (`gradientFinal`) — a bucket starts exchanging the moment
/// all of it is final — and `finish()`, after which `gradients` holds the sum over all workers'
/// micro-batches. Buckets are cut from the end of the arena, where the last layers (whose
/// gradients backward finishes first) live.
public final class GradientExchange {
    public let algorithm: ExchangeAlgorithm
    /// Element ranges of the arena in exchange order.
    public let buckets: [Range<Int>]
    /// The gradient arena this rank's model accumulates into.
    public let gradients: UnsafeMutableBufferPointer<Float>
    private let workers: Communicator
    private let shared: NodeGradients?
    private var pending: [Int] = []
    private var started: [Bool] = []
    private var requests: [CollectiveRequest] = []
    /// Seconds spent in exchange calls during backward (`gradientFinal`) and in `finish` this step.
    public private(set) var overlappedSeconds = 0.0, waitSeconds = 0.0

    /// The most micro-batches (over all workers) one step may sum with `reproducible`; each term
    /// then still keeps 38 bits below the largest magnitude of its chunk (a float has 24).
    public static let maxReproducibleTerms = 1 << 13

    /// Collective over `workers`. `count` is the arena's length (the same on every worker);
    /// `microBatchesPerWorker` the most micro-batches a worker runs in one step (`reproducible`
    /// keeps each apart until the exact sum); `microBatchesPerStep` how many all workers run
    /// together (by default `microBatchesPerWorker` × workers). For weights that do not depend on
    /// the worker count, pass the same `microBatchesPerStep` whatever the number of workers.
    /// `ranksPerNode` cuts nodes into smaller ones (`Communicator.splitByNode`).
    public init(algorithm: ExchangeAlgorithm, workers: Communicator, count: Int, bucketElements: Int,
                microBatchesPerWorker: Int = 1, microBatchesPerStep: Int? = nil, ranksPerNode: Int? = nil) throws(CommunicatorError) {
        let terms = microBatchesPerStep ?? microBatchesPerWorker * workers.size
        guard bucketElements > 0, microBatchesPerWorker > 0, terms > 0 else {
            throw .invalidArgument(
                call: "GradientExchange",
                detail: "bucket size (\(bucketElements) elements) and micro-batches per worker (\(microBatchesPerWorker)) and per step (\(terms)) must be positive")
        }
        guard algorithm != .reproducible || (terms <= Self.maxReproducibleTerms && terms <= microBatchesPerWorker * workers.size) else {
            throw .invalidArgument(
                call: "GradientExchange",
                detail: "reproducible sums 1 to \(Self.maxReproducibleTerms) micro-batches per step, at most \(microBatchesPerWorker) × \(workers.size) workers; got \(terms)")
        }
        // Bits of fixed point each term may fill: 51 − ⌈log₂ terms⌉, so that every sum stays
        // below 2⁵¹ and converts back to a float in a few vector instructions.
        let termBits = 51 - (Int.bitWidth - (terms - 1).leadingZeroBitCount)
        let lengths = try workers.allgather([Int64(count)])
        guard Set(lengths).count == 1 else {
            throw .lengthMismatch(call: "GradientExchange", detail: "workers' gradient arenas differ: \(lengths) elements")
        }
        self.algorithm = algorithm
        self.workers = workers
        buckets = stride(from: count, to: 0, by: -bucketElements).map { max(0, $0 - bucketElements)..<$0 }
        switch algorithm {
        case .mpi:
            shared = nil
            gradients = .allocate(capacity: count)
            gradients.initialize(repeating: 0)
        case .hierarchical, .reproducible:
            let node = try NodeGradients(
                communicator: workers, count: count, buffers: algorithm == .reproducible ? microBatchesPerWorker : 1,
                termBits: algorithm == .reproducible ? termBits : nil, ranksPerNode: ranksPerNode)
            shared = node
            gradients = node.gradients
            gradients.initialize(repeating: 0)
        }
    }

    deinit {
        requests.removeAll()
        if shared == nil { gradients.deallocate() }
    }

    /// Starts a step: no bucket is final yet.
    public func beginStep() {
        pending = buckets.map(\.count)
        started = Array(repeating: false, count: buckets.count)
        overlappedSeconds = 0
        waitSeconds = 0
    }

    /// After a micro-batch that is not the step's last: `reproducible` keeps its gradients apart
    /// (they are summed exactly later) and zeroes the arena; the others accumulate in place.
    public func setAsideMicroBatch() {
        if algorithm == .reproducible { shared!.setAside() }
    }

    /// Reports that no more gradient will be added to `range` of the arena in this step; starts
    /// every bucket that is now entirely final. Each element may be reported once per step.
    public func gradientFinal(_ range: Range<Int>) throws(CommunicatorError) {
        let begin = now()
        defer { overlappedSeconds += now() - begin }
        for (index, bucket) in buckets.enumerated() where bucket.overlaps(range) {
            pending[index] -= bucket.clamped(to: range).count
            precondition(pending[index] >= 0, "gradient range \(range) reported final twice in one step")
            if pending[index] == 0 { try start(bucket: index) }
        }
        for request in requests { _ = try request.test() }  // drive MPI's progress
    }

    /// Starts every bucket not started yet and waits for all: afterwards `gradients` holds the
    /// sum of every worker's gradients.
    public func finish() throws(CommunicatorError) {
        let begin = now()
        defer { waitSeconds += now() - begin }
        for index in buckets.indices where !started[index] { try start(bucket: index) }
        try CollectiveRequest.waitAll(requests)
        requests.removeAll()
        try shared?.finish()
    }

    private func start(bucket index: Int) throws(CommunicatorError) {
        started[index] = true
        let bucket = buckets[index]
        switch algorithm {
        case .mpi:
            requests.append(try workers.startAllreduce(UnsafeMutableBufferPointer(rebasing: gradients[bucket]), op: .sum))
        case .hierarchical, .reproducible:
            try shared!.reduce(bucket)
        }
    }

    private func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }
}
