import CMPI

/// A non-blocking collective in flight. Complete it with `wait()`, or poll with `test()`; a
/// request dropped before completion waits for it in `deinit`, so its buffer is never written
/// after the request is gone.
public final class CollectiveRequest {
    private var handle: MPI_Request?
    private let call: String
    private var completion: (() -> Void)?
    /// Whether the collective has finished and its result is in the buffer.
    public private(set) var isComplete = false

    init(_ handle: MPI_Request?, call: String, completion: (() -> Void)?) {
        self.handle = handle
        self.call = call
        self.completion = completion
    }

    deinit {
        if !isComplete { _ = MPI_Wait(&handle, cmpi_status_ignore()) }
        completion?()
    }

    /// Blocks until the collective completes.
    public func wait() throws(CommunicatorError) {
        guard !isComplete else { return }
        try check(MPI_Wait(&handle, cmpi_status_ignore()), "MPI_Wait (\(call))")
        finish()
    }

    /// Drives progress and reports whether the collective has completed (never blocks).
    public func test() throws(CommunicatorError) -> Bool {
        guard !isComplete else { return true }
        var done: Int32 = 0
        try check(MPI_Test(&handle, &done, cmpi_status_ignore()), "MPI_Test (\(call))")
        if done != 0 { finish() }
        return isComplete
    }

    /// Waits for every request in order.
    public static func waitAll(_ requests: [CollectiveRequest]) throws(CommunicatorError) {
        for request in requests { try request.wait() }
    }

    private func finish() {
        isComplete = true
        completion?()
        completion = nil
    }
}

extension Communicator {
    /// Starts a barrier and returns at once (`MPI_Ibarrier`): a rank can keep polling for
    /// messages, sleeping between polls, instead of spinning inside a blocking barrier.
    public func startBarrier() throws(CommunicatorError) -> CollectiveRequest {
        var request: MPI_Request? = cmpi_request_null()
        try check(MPI_Ibarrier(handle, &request), "MPI_Ibarrier")
        return CollectiveRequest(request, call: "MPI_Ibarrier", completion: nil)
    }
}
