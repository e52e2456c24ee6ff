import Foundation

/// Unbuffered writes to the standard streams (safe from any thread).
public enum Console {
    public static func error(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
    public static func output(_ text: String) { FileHandle.standardOutput.write(Data(text.utf8)) }

    /// Seconds as h:mm:ss or m:ss; "—" where no honest figure exists (not finite, over 10⁴ hours).
    public static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds < 36_000_000 else { return "—" }
        let s = Int(max(0, seconds).rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
