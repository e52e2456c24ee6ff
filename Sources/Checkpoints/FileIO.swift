import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Durable file operations on POSIX descriptors, so that every failure (a full disk above all)
/// surfaces as an error naming the file instead of being lost in a buffer.
enum FileIO {
    static func failure(_ path: String, _ operation: String) -> CheckpointError {
        .io(path: path, operation: operation, reason: String(cString: strerror(errno)))
    }

    /// An open file written front to back.
    final class Output {
        let path: String
        private var descriptor: Int32
        private(set) var written = 0

        init(creating path: String) throws {
            self.path = path
            descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else { throw failure(path, "create") }
        }

        func write(_ bytes: UnsafeRawBufferPointer) throws {
            var done = 0
            while done < bytes.count {
                let n = Glibc.write(descriptor, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw failure(path, "write") }
                done += n
            }
            written += bytes.count
        }

        /// Asks the kernel to start writing `bytes` back to the device now rather than all at the
        /// final fsync (on this advice Linux starts write-back of the range's dirty pages).
        func startWriteBack(_ bytes: Range<Int>) {
            _ = posix_fadvise(descriptor, off_t(bytes.lowerBound), off_t(bytes.count), POSIX_FADV_DONTNEED)
        }

        /// Flushes to the device and closes.
        func finish() throws {
            defer { descriptor = -1 }
            guard fsync(descriptor) == 0 else { let error = failure(path, "flush (fsync)"); close(descriptor); throw error }
            guard close(descriptor) == 0 else { throw failure(path, "close") }
        }

        deinit { if descriptor >= 0 { close(descriptor) } }
    }

    /// Replaces `url` with `data` so that a reader sees the old file or the new one, never a
    /// part: a temporary file, fsync, rename, then fsync of the directory.
    static func writeAtomically(_ data: Data, to url: URL) throws {
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp").path
        let output = try Output(creating: temporary)
        do {
            try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) throws in try output.write(bytes) }
            try output.finish()
        } catch {
            unlink(temporary)
            throw error
        }
        guard rename(temporary, url.path) == 0 else { let error = failure(url.path, "rename into place"); unlink(temporary); throw error }
        try syncDirectory(url.deletingLastPathComponent().path)
    }

    static func syncDirectory(_ path: String) throws {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw failure(path, "open the directory") }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw failure(path, "flush the directory (fsync)") }
    }

    /// A regular file's bytes `offset ..< offset + count` (symbolic links are refused: nothing
    /// in a checkpoint may point elsewhere).
    final class Input {
        let path: String
        let size: Int
        private let descriptor: Int32

        init(_ path: String) throws {
            self.path = path
            descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            guard descriptor >= 0 else {
                throw errno == ELOOP ? CheckpointError.invalid(path: path, reason: "\(path) is a symbolic link") : failure(path, "open")
            }
            var info = stat()
            guard fstat(descriptor, &info) == 0 else { let error = failure(path, "stat"); close(descriptor); throw error }
            guard (info.st_mode & S_IFMT) == S_IFREG else { close(descriptor); throw CheckpointError.invalid(path: path, reason: "\(path) is not a regular file") }
            size = Int(info.st_size)
        }

        func read(offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
            var done = 0
            while done < buffer.count {
                let n = pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
                if n < 0 && errno == EINTR { continue }
                guard n >= 0 else { throw failure(path, "read") }
                guard n > 0 else { throw CheckpointError.invalid(path: path, reason: "\(path) ends at byte \(offset + done), before the \(buffer.count) bytes at \(offset) the manifest names") }
                done += n
            }
        }

        /// SHA-256 of the whole file (hex).
        func sha256() throws -> String {
            var hash = SHA256()
            let block = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 22, alignment: 64)
            defer { block.deallocate() }
            var offset = 0
            while offset < size {
                let part = UnsafeMutableRawBufferPointer(rebasing: block[0..<min(block.count, size - offset)])
                try read(offset: offset, into: part)
                hash.update(bufferPointer: UnsafeRawBufferPointer(part))
                offset += part.count
            }
            return hash.finalize().hex
        }

        deinit { close(descriptor) }
    }
}

extension Sequence where Element == UInt8 {
    var hex: String { map { String(format: "%02x", $0) }.joined() }
}

extension SHA256.Digest {
    var hex: String { Array(self).hex }
}
