import CMPI
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A group of MPI ranks that run collectives together.
///
/// Every method is a collective unless it says otherwise: all ranks of the communicator must call
/// it in the same order with compatible arguments. Local argument errors (lengths, roots) are
/// thrown before MPI is called, so a rank that throws one has not entered the collective.
/// With the default `.funneled` thread level, use a communicator from the main thread only.
public final class Communicator: @unchecked Sendable {
    let handle: MPI_Comm
    private let owned: Bool
    /// This process's rank in `0..<size`.
    public let rank: Int
    /// The number of ranks.
    public let size: Int

    private init(handle: MPI_Comm, owned: Bool) throws(CommunicatorError) {
        self.handle = handle
        self.owned = owned
        var rank: Int32 = 0, size: Int32 = 0
        try check(MPI_Comm_rank(handle, &rank), "MPI_Comm_rank")
        try check(MPI_Comm_size(handle, &size), "MPI_Comm_size")
        self.rank = Int(rank)
        self.size = Int(size)
    }

    deinit {
        guard owned, !MPIRuntime.isFinalized else { return }
        var comm: MPI_Comm? = handle
        _ = MPI_Comm_free(&comm)
    }

    private static let worldInstance = Mutex<Communicator?>(nil)

    /// All ranks of the job (`MPI_COMM_WORLD`); starts MPI on first use.
    public static func world() throws(CommunicatorError) -> Communicator {
        try MPIRuntime.start()
        return try worldInstance.withLock { (cached: inout Communicator?) throws(CommunicatorError) -> Communicator in
            if let cached { return cached }
            let world = try Communicator(handle: cmpi_comm_world(), owned: false)
            cached = world
            return world
        }
    }

    /// Splits into sub-communicators, one per distinct `color`; ranks are ordered by `key`, then by
    /// their rank here. A rank passing `color: nil` joins none and gets `nil`.
    public func split(color: Int?, key: Int) throws(CommunicatorError) -> Communicator? {
        let c = try color.map { (c: Int) throws(CommunicatorError) -> Int32 in
            guard c >= 0, let narrow = Int32(exactly: c) else {
                throw .invalidArgument(call: "MPI_Comm_split", detail: "color \(c) must be in 0...\(Int32.max)")
            }
            return narrow
        } ?? cmpi_undefined()
        let k = try mpiCount(key, "MPI_Comm_split")
        var newComm: MPI_Comm? = cmpi_comm_null()
        try check(MPI_Comm_split(handle, c, k, &newComm), "MPI_Comm_split")
        guard let newComm, newComm != cmpi_comm_null() else { return nil }
        return try Communicator(handle: newComm, owned: true)
    }

    /// The ranks that share memory with this one (one communicator per node), in rank order.
    /// With `ranksPerNode`, each node's ranks are further cut into groups of that many, each
    /// treated as a node of its own: the multi-node paths on one machine (tests, benchmarks).
    public func splitByNode(ranksPerNode: Int? = nil) throws(CommunicatorError) -> Communicator {
        var newComm: MPI_Comm? = cmpi_comm_null()
        try check(
            MPI_Comm_split_type(handle, cmpi_comm_type_shared(), Int32(rank), cmpi_info_null(), &newComm),
            "MPI_Comm_split_type")
        let node = try Communicator(handle: newComm!, owned: true)
        guard let ranksPerNode else { return node }
        guard ranksPerNode > 0 else {
            throw .invalidArgument(call: "MPI_Comm_split", detail: "ranks per node must be positive, got \(ranksPerNode)")
        }
        return try node.split(color: node.rank / ranksPerNode, key: node.rank)!
    }

    /// Blocks until every rank has called it.
    public func barrier() throws(CommunicatorError) {
        try check(MPI_Barrier(handle), "MPI_Barrier")
    }

    /// The name of the host this rank runs on (not a collective).
    public static func processorName() throws(CommunicatorError) -> String {
        try MPIRuntime.start()
        var name = [CChar](repeating: 0, count: Int(cmpi_max_processor_name()) + 1)
        var length: Int32 = 0
        try check(MPI_Get_processor_name(&name, &length), "MPI_Get_processor_name")
        return String(decoding: name.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Seconds `abort` gives `MPI_Abort` before this process exits on its own.
    public static let abortGraceSeconds: UInt32 = 10

    /// Ends the whole job: prints `message` to stderr naming this rank and its host, then
    /// `MPI_Abort`s every rank of this communicator with `code` (not a collective: one rank
    /// suffices). `MPI_Abort` may block when a host is unreachable (a cut link: Open MPI waits on
    /// its daemon there); this process then exits with `code` after `abortGraceSeconds`
    /// anyway, so mpirun sees it end (Docs/Running.md, failure bounds).
    public func abort(_ message: String, code: Int32 = 1) -> Never {
        var worldRank: Int32 = -1, worldSize: Int32 = 0
        _ = MPI_Comm_rank(cmpi_comm_world(), &worldRank)
        _ = MPI_Comm_size(cmpi_comm_world(), &worldSize)
        let host = (try? Self.processorName()) ?? "?"
        let line = Array("transcriptile: rank \(worldRank) of \(worldSize) (on \(host)) aborting the job: \(message)\n".utf8)
        _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
        let exitCode = UnsafeMutablePointer<Int32>.allocate(capacity: 1)  // the watchdog's; never freed: the process ends
        exitCode.pointee = code
        var watchdog = pthread_t()
        _ = pthread_create(&watchdog, nil, { context in
            let code = context?.assumingMemoryBound(to: Int32.self).pointee ?? 1
            sleep(Communicator.abortGraceSeconds)
            let late = Array("transcriptile: MPI_Abort did not end the job within \(Communicator.abortGraceSeconds) s (an unreachable host?); exiting\n".utf8)
            _ = late.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
            _exit(code)
        }, exitCode)
        _ = MPI_Abort(handle, code)
        exit(code)
    }

    /// `count` elements cut into `parts` contiguous ranges whose lengths differ by at most one,
    /// the longer ones first (a pure function: the same on every rank).
    public static func partition(count: Int, parts: Int) -> [Range<Int>] {
        precondition(count >= 0 && parts > 0, "partition(count: \(count), parts: \(parts)) needs count ≥ 0, parts > 0")
        let base = count / parts, extra = count % parts
        var start = 0
        return (0..<parts).map { p in
            let length = base + (p < extra ? 1 : 0)
            defer { start += length }
            return start..<(start + length)
        }
    }

    /// Throws `invalidRank` unless `root` is a rank of this communicator.
    func checkRoot(_ root: Int, _ call: String) throws(CommunicatorError) -> Int32 {
        guard (0..<size).contains(root) else { throw .invalidRank(call: call, rank: root, size: size) }
        return Int32(root)
    }
}
