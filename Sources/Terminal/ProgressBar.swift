import Foundation

/// Live progress of one long piece of work on stderr, the same for every command.
///
/// On a terminal (`.live`) one line is redrawn in place at most ten times a second:
///
///     training  [████████████▌       ]  62%  124/200 steps · ETA 0:41 · loss 0.4121 · 1830 samples/s
///
/// In a log file or a pipe (`.lines`) the same text is printed as a plain line every `every`
/// seconds and once at the end, so batch logs stay short and greppable. Notes (a checkpoint, a
/// validation) go on lines of their own above the live line. `TRANSCRIPTILE_PROGRESS=live|lines|off`
/// overrides the choice (`transcriptile train` passes its terminal's choice on to the
/// coordinator, whose stderr is a pipe under mpirun); `COLUMNS` caps the line's width.
/// Safe to call from any thread.
public final class ProgressBar: @unchecked Sendable {
    public enum Style: String, Sendable {
        case live, lines, off

        /// `TRANSCRIPTILE_PROGRESS` if set to a style, else `.live` when stderr is a terminal.
        public static var forStandardError: Style {
            if let value = ProcessInfo.processInfo.environment["TRANSCRIPTILE_PROGRESS"], let style = Style(rawValue: value) { return style }
            return isatty(STDERR_FILENO) != 0 ? .live : .lines
        }
    }

    public let style: Style
    private let label: String
    private let unit: String
    private let every: Double
    private let lock = NSLock()
    private var total: Int
    /// The count this process started from (a resumed run's step), so the rate and ETA count only new work.
    private let first: Int
    private let start = Date.timeIntervalSinceReferenceDate
    private var done: Int
    private var detail = ""
    private var lastDrawn = -Double.infinity
    private var lastLogged: Double
    private var shown = ""
    private var finished = false

    /// - Parameters:
    ///   - label: what is being done ("training", "simulating", "importing").
    ///   - total: units of work; 0 when unknown (no bar, no ETA).
    ///   - unit: what a unit is ("steps", "patients", "slides").
    ///   - first: units already done before this process started (a resume).
    ///   - every: seconds between lines in `.lines` style.
    public init(_ label: String, total: Int, unit: String, first: Int = 0, every: Double = 10, style: Style = .forStandardError) {
        (self.label, self.total, self.unit, self.first, self.done, self.every, self.style) = (label, max(0, total), unit, first, first, every, style)
        lastLogged = start
    }

    /// Reports `done` units (absolute, not an increment) and an optional detail (rate, loss…).
    public func update(_ done: Int, detail: String = "") {
        lock.lock(); defer { lock.unlock() }
        guard !finished else { return }
        self.done = done
        self.detail = detail
        let now = Date.timeIntervalSinceReferenceDate
        switch style {
        case .off: break
        case .live:
            guard now - lastDrawn >= 0.1 || (total > 0 && done >= total) else { return }
            lastDrawn = now
            shown = line(now: now, bar: true)
            Console.error("\r\u{1B}[K" + shown)
        case .lines:
            guard now - lastLogged >= every else { return }
            lastLogged = now
            Console.error(line(now: now, bar: false) + "\n")
        }
    }

    /// Adds `count` units to the count so far.
    public func advance(by count: Int = 1, detail: String? = nil) {
        lock.lock(); let next = done + count, text = detail ?? self.detail; lock.unlock()
        update(next, detail: text)
    }

    /// A line of its own, above the live line.
    public func note(_ text: String) {
        lock.lock(); defer { lock.unlock() }
        switch style {
        case .live where !shown.isEmpty && !finished: Console.error("\r\u{1B}[K" + text + "\n" + shown)
        default: Console.error(text + "\n")
        }
    }

    /// Ends the bar: the final state stays on screen (and goes to a log), then `summary` if given.
    public func finish(_ summary: String? = nil) {
        lock.lock(); defer { lock.unlock() }
        guard !finished else { return }
        finished = true
        let now = Date.timeIntervalSinceReferenceDate
        switch style {
        case .off: break
        case .live: Console.error("\r\u{1B}[K" + line(now: now, bar: true) + "\n")
        case .lines: Console.error(line(now: now, bar: false) + "\n")
        }
        if let summary, style != .off { Console.error(summary + "\n") }
    }

    /// The elapsed seconds since this bar was made.
    public var elapsed: Double { Date.timeIntervalSinceReferenceDate - start }

    /// The line as it would be shown now: with the bar (`live`) or as a log line.
    public func text(live: Bool) -> String {
        lock.lock(); defer { lock.unlock() }
        return line(now: Date.timeIntervalSinceReferenceDate, bar: live)
    }

    /// The text of the line: label, bar (live only), percentage, count, ETA (or the elapsed time
    /// once done) and detail, cut to the terminal's width.
    private func line(now: Double, bar: Bool) -> String {
        let elapsed = now - start
        var parts = [String]()
        var head = label
        if total > 0 {
            let fraction = min(1, Double(done) / Double(total))
            if bar { head += "  " + Self.bar(fraction, width: 20) }
            head += String(format: " %3d%%", Int((fraction * 100).rounded(.down)))
            parts.append("\(done)/\(total) \(unit)")
        } else {
            parts.append("\(done) \(unit)")
        }
        if total > 0 && done >= total || finished {
            parts.append("in " + Console.clock(elapsed))
        } else if total > 0 && done > first && elapsed > 0 {
            let remaining = elapsed / Double(done - first) * Double(total - done)
            parts.append("ETA " + Console.clock(remaining))
        } else if total > 0 {
            parts.append("ETA —")
        }
        if !detail.isEmpty { parts.append(detail) }  // last: a narrow terminal cuts it first
        let text = head + "  " + parts.joined(separator: " · ")
        return bar ? Self.cut(text, to: Self.columns) : text
    }

    /// A bar of `width` cells in eighths of a block.
    public static func bar(_ fraction: Double, width: Int) -> String {
        let eighths = Int((max(0, min(1, fraction)) * Double(width * 8)).rounded(.down))
        let partial = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"][eighths % 8]
        let full = String(repeating: "█", count: eighths / 8)
        return "[" + full + partial + String(repeating: " ", count: width - eighths / 8 - (partial.isEmpty ? 0 : 1)) + "]"
    }

    /// The terminal's width: `COLUMNS`, else the terminal's own, else 100.
    static var columns: Int {
        if let value = ProcessInfo.processInfo.environment["COLUMNS"], let columns = Int(value), columns >= 20 { return columns }
        var size = winsize()
        if ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col >= 20 { return Int(size.ws_col) }
        return 100
    }

    /// `text` cut to `width` characters (a line that wraps cannot be redrawn in place).
    public static func cut(_ text: String, to width: Int) -> String {
        text.count < width ? text : String(text.prefix(width - 2)) + "…"
    }
}
