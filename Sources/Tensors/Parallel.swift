import Dispatch

/// Data-parallel loops for the kernels outside BLAS. They use as many threads as BLAS does
/// (`BLASThreads.count`), so a rank given N cores by `threads_per_rank` or OPENBLAS_NUM_THREADS
/// uses N cores for all of its work; small jobs run inline on the calling thread.
public enum Parallel {
    /// Below this many elements per thread, splitting costs more than it saves.
    public static let grain = 1 << 15

    /// Calls `body` on disjoint ranges covering 0..<count, concurrently when `count` is large.
    /// `cost` is the relative work per index (e.g. a row's length) for deciding whether to split.
    public static func forRanges(_ count: Int, cost: Int = 1, _ body: (Range<Int>) -> Void) {
        let threads = min(BLASThreads.count, count, count * max(cost, 1) / grain)
        forChunks(count, threads: threads) { _, range in body(range) }
    }

    /// Splits 0..<count into `threads` contiguous chunks and calls `body(chunk, range)` for each,
    /// concurrently; with one thread (or one index) it runs inline.
    public static func forChunks(_ count: Int, threads: Int, _ body: (Int, Range<Int>) -> Void) {
        let threads = max(1, min(threads, count))
        guard threads > 1 else {
            if count > 0 { body(0, 0..<count) }
            return
        }
        let chunk = (count + threads - 1) / threads
        withoutActuallyEscaping(body) { body in
            // The ranges are disjoint, which is what makes sharing `body` across threads sound.
            nonisolated(unsafe) let body = body
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                let range = t * chunk..<min(count, (t + 1) * chunk)
                if !range.isEmpty { body(t, range) }
            }
        }
    }
}
