import Foundation

/// The coordinator's live progress on stderr: one line rewritten in place on a terminal, a
/// line every `every` seconds otherwise (batch logs), notes in between.
final class ProgressLine {
    private let total: Int
    /// The step this process started from (a resumed run's checkpoint), for the ETA.
    private let first: Int
    private let every: Double
    private let isTerminal = isatty(STDERR_FILENO) != 0
    private var lastPrinted = 0.0
    private var current = ""

    init(total: Int, first: Int = 0, every: Double) { (self.total, self.first, self.every) = (total, first, every) }

    func update(step: Int, epoch: Int, loss: Double, samplesPerSecond: Double, elapsed: Double) {
        let eta = step > first ? elapsed / Double(step - first) * Double(total - step) : 0
        current = "step \(step)/\(total) · epoch \(epoch) · loss \(String(format: "%.4f", loss)) · \(Int(samplesPerSecond.rounded())) samples/s · ETA \(Self.clock(eta))"
        let now = Date.timeIntervalSinceReferenceDate
        if isTerminal {
            Console.error("\r\u{1B}[K" + current)
        } else if now - lastPrinted >= every || step == total {
            Console.error(current + "\n")
            lastPrinted = now
        }
    }

    /// A line of its own, above the live line.
    func note(_ text: String) {
        Console.error((isTerminal ? "\r\u{1B}[K" : "") + text + "\n" + (isTerminal ? current : ""))
    }

    func finish() {
        if isTerminal && !current.isEmpty { Console.error("\n") }
        current = ""
    }

    /// Seconds as h:mm:ss or m:ss.
    static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds < 360_000_000 else { return "—" }  // over ten thousand hours: no honest ETA
        let s = Int(max(0, seconds).rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
