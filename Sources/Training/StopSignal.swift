#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// SIGINT and SIGTERM (what Slurm and PBS send before the wall-time kill) turned into a flag
/// the training loop reads at each step boundary: the run then stops cleanly there.
enum StopSignal {
    private static let raised = Atomic<Bool>(false)

    static var isRaised: Bool { raised.load(ordering: .relaxed) }

    static func install() {
        for number in [SIGINT, SIGTERM] {
            signal(number) { _ in StopSignal.raised.store(true, ordering: .relaxed) }
        }
    }
}
