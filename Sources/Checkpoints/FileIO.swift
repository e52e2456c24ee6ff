import CDirectIO
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Durable file operations on POSIX descriptors, so that every failure (a full disk above all)
/// surfaces as an error naming the file instead of being lost in a buffer.
public enum FileIO {
    static func failure(_ path: String, _ operation: String) -> CheckpointError {
        .io(path: path, operation: operation, reason: String(cString: strerror(errno)))
    }

    /// An open file written front to back through two staging buffers of 8 MiB: while one is
    /// being written to the file on a thread of its own, the caller fills the other, so the
    /// device is kept busy while the next bytes are copied.
    ///
    /// With `direct`, writes go around the page cache (O_DIRECT) where the file system allows it
    /// (ext4, XFS, Lustre, GPFS; not tmpfs): the device reads them straight from the aligned
    /// staging buffer, so the kernel neither copies nor caches them. A save then costs the CPU
    /// little beyond compression, and does not evict the training data from the page cache.
    /// Otherwise each full buffer's write-back starts at once, so the final fsync has little left.
    /// A failed write (a full disk) is thrown by the next `write` or by `finish`.
    public final class Output {
        let path: String
        private var descriptor: Int32
        private(set) var written = 0
        private let buffers: [UnsafeMutableRawBufferPointer]
        private var current = 0, staged = 0
        /// Touched by the flusher while a buffer is in flight; by the caller only after `waitForFlusher`.
        private var direct: Bool, flushed = 0, flushError: Error?
        private let flusher = DispatchQueue(label: "transcriptile.file-flusher")
        private let inFlight = DispatchGroup()
        /// O_DIRECT needs buffer, size and offset aligned to the device's block: 4 KiB covers all.
        private static let alignment = 4096, stagingBytes = 8 << 20

        public init(creating path: String, direct: Bool = false) throws {
            self.path = path
            let flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC
            descriptor = direct ? open(path, flags | cdirectio_o_direct(), 0o644) : -1
            self.direct = descriptor >= 0
            if descriptor < 0 { descriptor = open(path, flags, 0o644) }
            guard descriptor >= 0 else { throw failure(path, "create") }
            buffers = (0..<2).map { _ in .allocate(byteCount: Self.stagingBytes, alignment: Self.alignment) }
        }

        public func write(_ bytes: UnsafeRawBufferPointer) throws {
            var rest = bytes
            while !rest.isEmpty {
                let count = min(rest.count, Self.stagingBytes - staged)
                (buffers[current].baseAddress! + staged).copyMemory(from: rest.baseAddress!, byteCount: count)
                staged += count
                rest = UnsafeRawBufferPointer(rebasing: rest[count...])
                if staged == Self.stagingBytes { try handOff() }
            }
            written += bytes.count
        }

        /// Writes what is staged, flushes to the device and closes.
        public func finish() throws {
            defer { descriptor = -1 }
            do {
                try waitForFlusher()
                // The whole blocks directly, the last partial block through the page cache.
                let last = UnsafeRawBufferPointer(buffers[current]), aligned = staged / Self.alignment * Self.alignment
                try flush(UnsafeRawBufferPointer(rebasing: last[0..<aligned]))
                stopWritingDirectly()
                try flush(UnsafeRawBufferPointer(rebasing: last[aligned..<staged]))
                guard fsync(descriptor) == 0 else { throw failure(path, "flush (fsync)") }
            } catch {
                close(descriptor)
                throw error
            }
            guard close(descriptor) == 0 else { throw failure(path, "close") }
        }

        /// Gives the full buffer to the flusher and goes on in the other, once that one is written.
        private func handOff() throws {
            try waitForFlusher()
            nonisolated(unsafe) let full = UnsafeRawBufferPointer(buffers[current]), output = self
            flusher.async(group: inFlight) {
                do { try output.flush(full) } catch { output.flushError = error }
            }
            current = 1 - current
            staged = 0
        }

        private func waitForFlusher() throws {
            inFlight.wait()
            if let flushError { throw flushError }
        }

        /// Writes `bytes` at the end of the file.
        private func flush(_ bytes: UnsafeRawBufferPointer) throws {
            var done = 0
            while done < bytes.count {
                let n = Glibc.write(descriptor, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 && errno == EINTR { continue }
                if n < 0 && errno == EINVAL && direct {
                    // The file system opened the file for direct I/O but refuses it (or a short
                    // write left the offset unaligned): go on through the page cache.
                    stopWritingDirectly()
                    continue
                }
                guard n > 0 else { throw failure(path, "write") }
                done += n
            }
            if !direct { _ = posix_fadvise(descriptor, off_t(flushed), off_t(bytes.count), POSIX_FADV_DONTNEED) }
            flushed += bytes.count
        }

        private func stopWritingDirectly() {
            guard direct else { return }
            direct = false
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) & ~cdirectio_o_direct())
        }

        deinit {
            inFlight.wait()
            if descriptor >= 0 { close(descriptor) }
            for buffer in buffers { buffer.deallocate() }
        }
    }

    /// Replaces `url` with `data` so that a reader sees the old file or the new one, never a
    /// part: a temporary file, fsync, rename, then fsync of the directory.
    public static func writeAtomically(_ data: Data, to url: URL) throws {
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

    /// Flushes a directory's entries to the device (after a rename into it).
    public static func syncDirectory(_ path: String) throws {
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

        /// XXH64 of the whole file (canonical hex).
        func xxh64() throws -> String {
            var hash = XXH64()
            let block = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 22, alignment: 64)
            defer { block.deallocate() }
            var offset = 0
            while offset < size {
                let part = UnsafeMutableRawBufferPointer(rebasing: block[0..<min(block.count, size - offset)])
                try read(offset: offset, into: part)
                hash.update(UnsafeRawBufferPointer(part))
                offset += part.count
            }
            return hash.finalize().canonicalHex
        }

        deinit { close(descriptor) }
    }
}
