import Dispatch
import Synchronization

/// Data-parallel loops for the kernels. They use as many threads as BLAS does
/// (`BLASThreads.count`), so a rank given N cores by `threads_per_rank` or OPENBLAS_NUM_THREADS
/// uses N cores for all of its work; small jobs run inline on the calling thread.
///
/// Work is cut into more pieces than threads and the threads claim pieces in turn (dynamic
/// scheduling): a thread the OS preempts — for a loader waking, another rank, another job on
/// the node — holds up only the piece it has, while the others take the rest. With a fixed
/// share per thread every parallel region would wait for the preempted one (Docs/Numerics.md,
/// Threads).
public enum Parallel {
    /// Below this many elements per piece, splitting costs more than it saves.
    public static let grain = 1 << 15
    /// Pieces per thread when the work is plentiful: enough that a preempted thread's piece is
    /// a small share of the region, few enough that claiming them costs nothing measurable.
    public static let piecesPerThread = 8

    /// Calls `body` on disjoint ranges covering 0..<count, concurrently when `count` is large.
    /// `cost` is the relative work per index (e.g. a row's length) for deciding how finely to split.
    public static func forRanges(_ count: Int, cost: Int = 1, _ body: (Range<Int>) -> Void) {
        let worth = count * max(cost, 1) / grain
        let threads = min(BLASThreads.count, count, worth)
        forPieces(count, pieces: min(count, worth, threads * piecesPerThread), threads: threads) { _, range in body(range) }
    }

    /// Splits 0..<count into `pieces` near-equal contiguous ranges and calls `body(slot, range)`
    /// for each, from up to `threads` threads at once; each thread claims the next unclaimed
    /// range until none is left. `slot` (0..<threads) names the calling thread, for per-thread
    /// scratch: calls with the same slot never overlap. With one thread it runs inline.
    public static func forPieces(_ count: Int, pieces: Int, threads: Int, _ body: (_ slot: Int, Range<Int>) -> Void) {
        let pieces = max(1, min(pieces, count)), threads = max(1, min(threads, pieces))
        guard threads > 1 else {
            if count > 0 { body(0, 0..<count) }
            return
        }
        let next = Atomic<Int>(0)
        withoutActuallyEscaping(body) { body in
            // The ranges are disjoint, which is what makes sharing `body` across threads sound.
            nonisolated(unsafe) let body = body
            DispatchQueue.concurrentPerform(iterations: threads) { slot in
                while true {
                    let piece = next.wrappingAdd(1, ordering: .relaxed).oldValue
                    guard piece < pieces else { return }
                    body(slot, piece * count / pieces..<(piece + 1) * count / pieces)
                }
            }
        }
    }
}
