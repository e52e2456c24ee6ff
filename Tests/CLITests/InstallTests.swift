import Foundation
import TestSupport
import XCTest

/// `launch/install PREFIX`: the layout it makes, that it replaces only what it installed, and
/// that the installed executables run from anywhere with the Swift toolchain off the PATH —
/// and, by `ldd`, without its libraries (the Swift runtime and Foundation linked in).
final class InstallTests: XCTestCase {
    static let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("transcriptile-install-tests-\(getpid())")
    let install = ProcessRunner.repositoryRoot.appendingPathComponent("launch/install").path
    /// The executables of this build, installed as they are (fast; launch/install's own build is
    /// the same code linked with --static-swift-stdlib).
    let built = ["TRANSCRIPTILE_BIN": ProcessRunner.productsFolder.path]
    /// A user's shell without the toolchain: only the system's folders.
    let plain = ["PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": "", "TRANSCRIPTILE_BIN": ""]
    static let executables = ["transcriptile", "transcriptile-coordinator", "transcriptile-worker"]

    override class func setUp() { try? FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true) }
    override class func tearDown() { try? FileManager.default.removeItem(at: scratch) }

    override func setUpWithError() throws {
        try XCTSkipIf(RankTests.isRankProcess, "launches its own processes")
    }

    func testInstallLaysOutAPrefixAndReplacesOnlyWhatItInstalled() throws {
        let prefix = Self.scratch.appendingPathComponent("prefix-\(UUID().uuidString)").path
        let first = try ProcessRunner.run(install, [prefix], environment: built, timeout: 120)
        XCTAssertEqual(first.status, 0, first.output)
        let files = Self.executables.map { "bin/" + $0 } + ["libexec/transcriptile/mpirun", "share/transcriptile/slurm.sbatch",
                                                           "share/transcriptile/slurm-srun.sbatch", "share/transcriptile/pbs.pbs",
                                                           "share/transcriptile/hosts.example", "share/transcriptile/README.md",
                                                           "share/transcriptile/runs/demo-cancer-type.yaml", "share/transcriptile/profiles/8-threads.yaml",
                                                           "share/transcriptile/install-manifest"]
        for file in files {
            XCTAssertTrue(FileManager.default.fileExists(atPath: prefix + "/" + file), file)
            XCTAssertTrue(first.stdout.contains("installed \(prefix)/\(file)\n"), "it says what it installed: \(file)\n" + first.output)
        }
        for file in files.prefix(4) { XCTAssertEqual(access(prefix + "/" + file, X_OK), 0, "\(file) is executable") }

        // Again: its own files are replaced.
        let again = try ProcessRunner.run(install, [prefix], environment: built, timeout: 120)
        XCTAssertEqual(again.status, 0, again.output)

        // A file it did not install is in the way: nothing happens without --force.
        let other = Self.scratch.appendingPathComponent("other-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: other + "/bin", withIntermediateDirectories: true)
        try "#!/bin/sh\necho mine\n".write(toFile: other + "/bin/transcriptile", atomically: true, encoding: .utf8)
        let refused = try ProcessRunner.run(install, [other], environment: built, timeout: 120)
        XCTAssertEqual(refused.status, 2, refused.output)
        XCTAssertTrue(refused.stderr.contains(other + "/bin/transcriptile") && refused.stderr.contains("--force"), refused.output)
        XCTAssertEqual(try String(contentsOfFile: other + "/bin/transcriptile", encoding: .utf8), "#!/bin/sh\necho mine\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: other + "/bin/transcriptile-worker"), "nothing was installed")
        let forced = try ProcessRunner.run(install, ["--force", other], environment: built, timeout: 120)
        XCTAssertEqual(forced.status, 0, forced.output)
        XCTAssertEqual(access(other + "/bin/transcriptile-worker", X_OK), 0)

        for (arguments, why) in [([], "no PREFIX"), ([other + "/bin/transcriptile"], "a file as PREFIX"), (["--bogus", other], "an unknown option")] {
            let bad = try ProcessRunner.run(install, arguments, environment: built)
            XCTAssertEqual(bad.status, 2, why + "\n" + bad.output)
        }
    }

    /// launch/install as a user runs it: its own build (release, --static-swift-stdlib, in
    /// .build/install: minutes the first time, seconds once built), then the installed files.
    func testInstalledExecutablesRunWithoutTheToolchain() throws {
        let prefix = Self.scratch.appendingPathComponent("prefix-\(UUID().uuidString)").path
        let installed = try ProcessRunner.run(install, [prefix], timeout: 3600)
        XCTAssertEqual(installed.status, 0, installed.output)
        let elsewhere = Self.scratch.appendingPathComponent("elsewhere")
        try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true)

        let help = try ProcessRunner.run(prefix + "/bin/transcriptile", ["--help"], environment: plain, directory: elsewhere)
        XCTAssertEqual(help.status, 0, help.output)
        XCTAssertTrue(help.stdout.contains("train"), help.output)
        let config = prefix + "/share/transcriptile/runs/demo-cancer-type.yaml"
        let dry = try ProcessRunner.run(prefix + "/bin/transcriptile", ["train", config, "--workers", "2", "--dry-run"], environment: plain, directory: elsewhere)
        XCTAssertEqual(dry.status, 0, dry.output)
        let command = try LaunchCommand(dry.stdout)
        XCTAssertEqual(command.coordinator[2], prefix + "/bin/transcriptile-coordinator", "the coordinator beside the installed transcriptile\n" + dry.output)
        XCTAssertEqual(command.workers[2], prefix + "/bin/transcriptile-worker", dry.output)
        let smoke = try ProcessRunner.run(prefix + "/libexec/transcriptile/mpirun", ["-np", "2", prefix + "/bin/transcriptile", "smoke"],
                                          environment: plain, directory: elsewhere, timeout: 120)
        XCTAssertEqual(smoke.status, 0, "the installed mpirun wrapper runs the installed transcriptile\n" + smoke.output)

        // No library from the toolchain: the Swift runtime and Foundation are linked in.
        let toolchain = try XCTUnwrap(Self.toolchainLibraries(), "this test process loads libswiftCore.so from the toolchain")
        for name in Self.executables {
            let ldd = try ProcessRunner.run("/usr/bin/ldd", [prefix + "/bin/" + name], environment: plain)
            XCTAssertEqual(ldd.status, 0, ldd.output)
            let linked = ldd.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { text in
                let swiftish = ["libswift", "libFoundation", "lib_Foundation", "libdispatch", "libBlocksRuntime"].contains { text.hasPrefix($0) }
                return text.contains(toolchain) || (swiftish && text.contains("not found"))
            }
            XCTAssertTrue(linked.isEmpty, "bin/\(name) loads \(linked.count) libraries from the toolchain (\(toolchain)): "
                           + linked.map { String($0.prefix { $0 != " " }) }.joined(separator: ", ")
                           + "; it needs the Swift runtime and Foundation linked in (swift build --static-swift-stdlib)")
        }
    }

    /// The folder the Swift runtime of this test process comes from (the toolchain's libraries).
    private static func toolchainLibraries() -> String? {
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        guard let ldd = try? ProcessRunner.run("/usr/bin/ldd", [me]),
              let line = ldd.stdout.split(separator: "\n").first(where: { $0.contains("libswiftCore.so => /") }),
              let path = line.split(separator: " ").first(where: { $0.hasPrefix("/") }) else { return nil }
        return URL(fileURLWithPath: String(path)).deletingLastPathComponent().path
    }
}
