import CMPI

/// One slot of memory per rank of a node communicator, allocated by MPI in one shared segment
/// (`MPI_Win_allocate_shared`), so every rank can read and write every slot with plain loads
/// and stores. Ordering between ranks comes from `synchronize()` (a memory fence plus a barrier).
final class SharedMemoryWindow {
    let node: Communicator
    let slotBytes: Int
    private var window: MPI_Win?
    /// Each rank's slot, in node-rank order, as this process maps it.
    let slots: [UnsafeMutableRawPointer]

    /// Collective over `node`, whose ranks must share memory (`Communicator.splitByNode`).
    init(node: Communicator, slotBytes: Int) throws(CommunicatorError) {
        self.node = node
        self.slotBytes = slotBytes
        var base: UnsafeMutableRawPointer?
        var window: MPI_Win? = cmpi_win_null()
        try check(
            MPI_Win_allocate_shared(MPI_Aint(max(slotBytes, 1)), 1, cmpi_info_null(), node.handle, &base, &window),
            "MPI_Win_allocate_shared")
        self.window = window
        var slots = [UnsafeMutableRawPointer]()
        for rank in 0..<node.size {
            var size: MPI_Aint = 0, unit: Int32 = 0
            var pointer: UnsafeMutableRawPointer?
            try check(MPI_Win_shared_query(window, Int32(rank), &size, &unit, &pointer), "MPI_Win_shared_query")
            guard let pointer else { throw .invalidArgument(call: "MPI_Win_shared_query", detail: "rank \(rank) has no slot") }
            slots.append(pointer)
        }
        self.slots = slots
        try check(MPI_Win_lock_all(MPI_MODE_NOCHECK, window), "MPI_Win_lock_all")
    }

    deinit {
        guard !MPIRuntime.isFinalized, window != cmpi_win_null() else { return }
        _ = MPI_Win_unlock_all(window)
        _ = MPI_Win_free(&window)
    }

    /// Makes every rank's earlier stores visible to every rank's later loads (collective).
    func synchronize() throws(CommunicatorError) {
        try check(MPI_Win_sync(window), "MPI_Win_sync")
        try node.barrier()
        try check(MPI_Win_sync(window), "MPI_Win_sync")
    }

    /// This rank's slot, typed.
    func slot<T>(_ rank: Int, as _: T.Type) -> UnsafeMutablePointer<T> {
        slots[rank].bindMemory(to: T.self, capacity: slotBytes / MemoryLayout<T>.stride)
    }
}
