import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Passes mpirun's stderr (its own messages and every rank's) on to this process's stderr as it
/// comes, with Open MPI's end-of-job banners made short, so that the first error line a user
/// sees is the one that says what went wrong — the coordinator's or the failing rank's:
///
/// | Open MPI's banner | becomes |
/// |---|---|
/// | "Primary job terminated normally, but 1 process returned a non-zero exit code…" | nothing (the rank said why; the exit status says it failed) |
/// | "mpirun detected that one or more processes exited with non-zero status…" | nothing |
/// | "MPI_ABORT was invoked on rank R … NOTE: invoking MPI_ABORT causes Open MPI to kill all…" | nothing (the aborting rank printed its cause) |
/// | "mpirun noticed that process rank R with PID P on node H exited on signal S (NAME)." | `transcriptile train: rank R (worker R−1) on node H exited on signal S (NAME)` |
/// | "ORTE has lost communication with a remote daemon … Remote daemon: … on node H" | `transcriptile train: mpirun lost contact with node H …` |
/// | "[host:pid] N more processes have sent help message …", "Set MCA parameter orte_base_help_aggregate…" | nothing |
///
/// Every other banner (a placement Open MPI refuses, too few slots, an unknown option) passes
/// unchanged: there Open MPI's words are the only explanation. `mpirun -q` would silence all of
/// them, also the lost node and the killed rank, which is why it is not used.
final class MPIOutputFilter: @unchecked Sendable {
    private let descriptor: Int32
    private let done = DispatchSemaphore(value: 0)
    /// The line being held back: it may open a banner or be an aggregation note.
    private var held = [UInt8]()
    private var holding = false
    private var atLineStart = true
    /// The lines of the banner being read (after its opening rule), or nil outside one.
    private var banner: [String]?

    init(reading descriptor: Int32) {
        self.descriptor = descriptor
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65_536)
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            while true {
                let ready = poll(&poller, 1, 500)
                if ready == 0 { releaseHeldLine(); continue }
                if ready < 0 { if errno == EINTR { continue } else { break } }
                let count = read(descriptor, &buffer, buffer.count)
                if count > 0 { Self.write(consume(buffer[..<count])) } else if count == 0 || errno != EINTR { break }
            }
            Self.write(held + (banner.map { Self.rule + Array($0.joined().utf8) } ?? []))
            close(descriptor)
            done.signal()
        }
    }

    /// Waits until mpirun's stderr has been read to its end, at most `seconds` (a rank that
    /// kept it open must not hold the job's end).
    func finish(within seconds: Double) {
        _ = done.wait(timeout: .now() + seconds)
    }

    /// Writes `bytes` to stderr in full (a failed write, e.g. a closed terminal, is dropped).
    static func write(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(STDERR_FILENO, $0.baseAddress, $0.count) }
            if written > 0 { offset += written } else if written < 0 && errno == EINTR { continue } else { return }
        }
    }

    /// Quiet for a while: a partial line held back (a rank's prompt, say) goes out, unless it may
    /// still become a banner's rule.
    private func releaseHeldLine() {
        guard holding, banner == nil, held.contains(where: { $0 != UInt8(ascii: "-") }) else { return }
        Self.write(held)
        held = []
        holding = false
        atLineStart = false
    }

    private static let rule = Array("------------------------------------------------------------------------\n".utf8)

    /// The bytes to pass on for `bytes` read from mpirun.
    private func consume(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        var out = [UInt8]()
        for byte in bytes {
            if holding {
                held.append(byte)
                if byte == UInt8(ascii: "\n") {
                    out += line(String(decoding: held, as: UTF8.self))
                    held = []
                    holding = false
                    atLineStart = true
                } else if held.count > 4096 {
                    out += held
                    held = []
                    holding = false
                    atLineStart = false
                }
            } else if atLineStart && (banner != nil || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "[")) {
                held = [byte]
                holding = true
                if byte == UInt8(ascii: "\n") { out += line("\n"); held = []; holding = false }
            } else {
                out.append(byte)
                atLineStart = byte == UInt8(ascii: "\n")
            }
        }
        return out
    }

    /// What to pass on for one whole line (with its newline) read at a line's start.
    private func line(_ text: String) -> [UInt8] {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let isRule = trimmed.count >= 20 && trimmed.allSatisfy { $0 == "-" }
        if var lines = banner {
            if isRule {
                banner = nil
                return Array(Self.summary(of: lines).utf8)
            }
            lines.append(text)
            banner = lines
            if lines.count > 200 { banner = nil; return Self.rule + Array(lines.joined().utf8) }  // not a banner after all
            return []
        }
        if isRule { banner = []; return [] }
        if Self.isAggregationNote(trimmed) { return [] }
        return Array(text.utf8)
    }

    /// "[host:1234] 1 more process has sent help message help-mpi-api.txt / mpi-abort", and the
    /// advice that follows it.
    private static func isAggregationNote(_ line: String) -> Bool {
        guard line.hasPrefix("["), let close = line.firstIndex(of: "]") else { return false }
        let rest = line[line.index(after: close)...]
        return (rest.contains(" more process") && rest.contains("sent help message")) || rest.contains("orte_base_help_aggregate")
    }

    /// What to print for a banner of `lines`: nothing, one line, or the banner as it was.
    private static func summary(of lines: [String]) -> String {
        let text = lines.joined()
        if text.contains("terminated normally, but") || text.contains("exited with non-zero status")
            || text.contains("MPI_ABORT was invoked on rank") {
            return ""
        }
        if let match = text.firstMatch(of: #/process rank (\d+) with PID \d+ on node (\S+) exited on signal (\d+)( \(([^)]*)\))?/#),
           let rank = Int(match.1) {
            let who = rank == 0 ? "the coordinator" : "worker \(rank - 1)"
            let cause = [match.5.map(String.init), match.3 == "9" ? "kill -9, or the out-of-memory killer: see dmesg" : nil]
                .compactMap { $0 }.joined(separator: " — ")
            return "transcriptile train: rank \(rank) (\(who)) on node \(match.2) exited on signal \(match.3)\(cause.isEmpty ? "" : " (\(cause))"); mpirun ended the job\n"
        }
        if text.contains("lost communication with a remote daemon"),
           let match = text.firstMatch(of: #/Remote daemon:\s*\S+ on node (\S+)/#) {
            return "transcriptile train: mpirun lost contact with node \(match.1) (the host died, or its network link failed); ending the job\n"
        }
        let rule = String(decoding: rule, as: UTF8.self)
        return rule + text + rule
    }
}
