import Foundation

/// Unbuffered writes to the standard streams (safe from any thread).
enum Console {
    static func error(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
    static func output(_ text: String) { FileHandle.standardOutput.write(Data(text.utf8)) }
}
