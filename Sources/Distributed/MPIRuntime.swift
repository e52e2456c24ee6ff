import CMPI
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The process's MPI library: started once (also without `mpirun`, as a singleton of one rank),
/// finalised once at process exit.
public enum MPIRuntime {
    /// How many threads may call MPI (`MPI_THREAD_*`).
    public enum ThreadLevel: Int32, Comparable, Sendable {
        case single, funneled, serialized, multiple

        public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    }

    private static let provided = Mutex<ThreadLevel?>(nil)

    /// Starts MPI if it is not running and returns the thread level MPI provides.
    ///
    /// The first call decides the level; later calls return it unchanged. The default,
    /// `.funneled`, lets only the main thread call MPI. Communicators report errors as thrown
    /// `CommunicatorError`s instead of aborting (`MPI_ERRORS_RETURN` on the world communicator).
    @discardableResult
    public static func start(requesting level: ThreadLevel = .funneled) throws(CommunicatorError) -> ThreadLevel {
        try provided.withLock { (provided: inout ThreadLevel?) throws(CommunicatorError) -> ThreadLevel in
            if let provided { return provided }
            var running: Int32 = 0
            try check(MPI_Initialized(&running), "MPI_Initialized")
            var got = level.rawValue
            if running == 0 {
                try check(MPI_Init_thread(nil, nil, level.rawValue, &got), "MPI_Init_thread")
                atexit { MPIRuntime.finalize() }
            } else {
                try check(MPI_Query_thread(&got), "MPI_Query_thread")
            }
            try check(MPI_Comm_set_errhandler(cmpi_comm_world(), cmpi_errors_return()), "MPI_Comm_set_errhandler")
            let result = ThreadLevel(rawValue: got) ?? .single
            provided = result
            return result
        }
    }

    /// Whether `start` has run in this process.
    public static var isStarted: Bool { provided.withLock { $0 != nil } }

    /// Whether MPI has been finalised (after which no MPI call is allowed).
    public static var isFinalized: Bool {
        var done: Int32 = 0
        return MPI_Finalized(&done) == MPI_SUCCESS && done != 0
    }

    /// Finalises MPI if it is running; registered with `atexit` by `start`.
    static func finalize() {
        var running: Int32 = 0
        guard MPI_Initialized(&running) == MPI_SUCCESS, running != 0, !isFinalized else { return }
        _ = MPI_Finalize()
    }
}
