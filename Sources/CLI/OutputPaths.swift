import ArgumentParser
import Foundation

/// Checks, before any work, that a command can write where it was told: the path is not a
/// directory (for a file) or not a file (for a directory), and the folder it goes into exists.
enum OutputPath {
    /// `path` names a file to write: not a directory, in an existing directory.
    static func checkFile(_ path: String, _ flag: String) throws {
        if isDirectory(path) == true { throw ValidationError("\(flag) \(path) is a directory; give the path of the file to write") }
        try checkParent(path, flag)
    }

    /// `path` names a directory to write into: not a file, in an existing directory.
    static func checkDirectory(_ path: String, _ flag: String) throws {
        if isDirectory(path) == false { throw ValidationError("\(flag) \(path) is a file; give a directory") }
        try checkParent(path, flag)
    }

    private static func checkParent(_ path: String, _ flag: String) throws {
        let parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
        guard isDirectory(parent) == true else { throw ValidationError("\(flag) \(path): the folder \(parent) does not exist; create it first") }
    }

    /// Whether something exists at `path` and is a directory (nil: nothing there).
    private static func isDirectory(_ path: String) -> Bool? {
        var directory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &directory) ? directory.boolValue : nil
    }
}
