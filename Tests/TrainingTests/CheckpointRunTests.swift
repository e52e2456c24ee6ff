import Foundation
import TestSupport
import XCTest

/// Checkpoints in whole runs under mpirun: saved on signal and by cadence, resumed bitwise,
/// resharded to another worker count, broken ones passed over.
extension TrainingRunTests {
    private func checkpoints(_ run: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent("checkpoints").path)) ?? []).filter { $0.hasPrefix("step-") }.sorted()
    }

    /// SIGTERM (what Slurm sends before the wall-time kill) → a checkpoint at the next step
    /// boundary → resumed, the run ends with the same weights as one never interrupted.
    func testRunInterruptedBySIGTERMResumesBitwiseIdentically() throws {
        let file = try config("checkpoint: {every_steps: 50}")
        let sets = ["train.steps=3000", "evaluation.every_steps=0"]
        let (whole, wholeRun) = try train(file, workers: 2, sets)
        XCTAssertEqual(whole.status, 0, whole.output)

        let interrupted = Self.scratch.appendingPathComponent("interrupted-\(UUID().uuidString)")
        let signaller = Thread {
            let latest = interrupted.appendingPathComponent("checkpoints/LATEST")
            for _ in 0..<600 where !FileManager.default.fileExists(atPath: latest.path) { Thread.sleep(forTimeInterval: 0.02) }
            // As Slurm's --signal=B:TERM does: to the batch script, here launch/train.
            _ = try? ProcessRunner.run("/usr/bin/pkill", ["-TERM", "-f", "launch/train.*\(interrupted.lastPathComponent)"])
        }
        signaller.start()
        let (first, _) = try train(file, workers: 2, runDirectory: interrupted.lastPathComponent, sets)
        XCTAssertEqual(first.status, 0, "a clean stop on a signal exits 0\n" + first.output)
        let summary = try json(interrupted.appendingPathComponent("summary.json"))
        XCTAssertEqual(summary["stopped_early"] as? Bool, true, "the signal arrived after the run ended\n" + first.output)
        let stoppedAt = try XCTUnwrap(summary["final_step"] as? Int)
        XCTAssertTrue(checkpoints(interrupted).contains(String(format: "step-%08d", stoppedAt)), "a checkpoint at the step it stopped: \(checkpoints(interrupted))")

        let (second, _) = try train(file, workers: 2, runDirectory: interrupted.lastPathComponent, sets)
        XCTAssertEqual(second.status, 0, second.output)
        XCTAssertTrue(second.stdout.contains("resuming from"), second.output)
        XCTAssertEqual(try parameterHash(interrupted), try parameterHash(wholeRun), "resumed weights equal uninterrupted ones")
        let steps = try String(contentsOf: interrupted.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]).flatMap { $0["split"] == nil ? $0["step"] as? Int : nil } }
        XCTAssertEqual(steps, Array(1...3000), "metrics.jsonl holds every step once, numbered from 1")
    }

    /// Saved by 3 workers, resumed by 2 and by 4: with the reproducible exchange and a fixed
    /// micro-batch the weights are those of an uninterrupted run.
    func testCheckpointFromThreeWorkersResumesOnTwoAndFour() throws {
        let file = try config("exchange: {algorithm: reproducible}\ncheckpoint: {every_steps: 6}")
        let (whole, wholeRun) = try train(file, workers: 3)
        XCTAssertEqual(whole.status, 0, whole.output)
        XCTAssertEqual(checkpoints(wholeRun), ["step-00000006", "step-00000012"])
        for workers in [2, 4] {
            let copy = Self.scratch.appendingPathComponent("reshard-\(workers)-\(UUID().uuidString)")
            try FileManager.default.copyItem(at: wholeRun, to: copy)
            try FileManager.default.removeItem(at: copy.appendingPathComponent("checkpoints/step-00000012"))  // as if stopped after step 6
            try FileManager.default.removeItem(at: copy.appendingPathComponent("summary.json"))
            let (resumed, _) = try train(file, workers: workers, runDirectory: copy.lastPathComponent)
            XCTAssertEqual(resumed.status, 0, resumed.output)
            XCTAssertTrue(resumed.stdout.contains("resuming from \(copy.path)/checkpoints/step-00000006 at step 6"), resumed.output)
            XCTAssertEqual(try parameterHash(copy), try parameterHash(wholeRun), "resumed on \(workers) workers")
        }
    }

    /// ZeRO-1: three workers each keep a third of Adam's moments, yet the weights are those of
    /// the full update on another worker count, and the partitioned checkpoint resumes on 2
    /// workers without ZeRO-1 and on 4 with it, as if never interrupted.
    func testZeroOneUpdatesLikeTheFullOptimizerAndItsCheckpointsReshard() throws {
        let file = try config("exchange: {algorithm: reproducible, zero_stage: 1}\ncheckpoint: {every_steps: 6}")
        let (zero, zeroRun) = try train(file, workers: 3)
        XCTAssertEqual(zero.status, 0, zero.output)
        XCTAssertTrue(zero.stdout.contains("ZeRO-1 optimizer state"), zero.output)
        let (full, fullRun) = try train(file, workers: 2, ["exchange.zero_stage=0"])
        XCTAssertEqual(full.status, 0, full.output)
        XCTAssertEqual(try parameterHash(zeroRun), try parameterHash(fullRun), "ZeRO-1 on 3 workers = full update on 2")

        let manifest = try JSONSerialization.jsonObject(
            with: Data(contentsOf: zeroRun.appendingPathComponent("checkpoints/step-00000006/manifest.json"))) as? [String: Any]
        let arenas = try XCTUnwrap(manifest?["arenas"] as? [[String: Any]])
        let counts = Dictionary(uniqueKeysWithValues: arenas.map { ($0["name"] as? String ?? "", $0["count"] as? Int ?? 0) })
        XCTAssertEqual(counts["adam.m"], counts["parameters"], "the moments are saved whole, from three partitions: \(counts)")

        for (workers, stage) in [(2, 0), (4, 1)] {
            let copy = Self.scratch.appendingPathComponent("zero-\(workers)-\(UUID().uuidString)")
            try FileManager.default.copyItem(at: zeroRun, to: copy)
            try FileManager.default.removeItem(at: copy.appendingPathComponent("checkpoints/step-00000012"))
            try FileManager.default.removeItem(at: copy.appendingPathComponent("summary.json"))
            let (resumed, _) = try train(file, workers: workers, runDirectory: copy.lastPathComponent, ["exchange.zero_stage=\(stage)"])
            XCTAssertEqual(resumed.status, 0, resumed.output)
            XCTAssertTrue(resumed.stdout.contains("at step 6"), resumed.output)
            XCTAssertEqual(try parameterHash(copy), try parameterHash(zeroRun), "resumed on \(workers) workers, zero_stage \(stage)")
        }
    }

    /// A corrupted newest checkpoint is reported by `checkpoint verify` and passed over by
    /// `--resume auto`, which says so and continues from the previous one; a checkpoint of
    /// another model is refused naming what differs.
    func testBrokenCheckpointIsPassedOverAndAnotherModelIsRefused() throws {
        let file = try config("checkpoint: {every_steps: 4}")
        let (first, run) = try train(file, workers: 2)
        XCTAssertEqual(first.status, 0, first.output)
        XCTAssertEqual(checkpoints(run), ["step-00000004", "step-00000008", "step-00000012"])
        let shard = run.appendingPathComponent("checkpoints/step-00000012/shard-0001.tzst")
        let handle = try FileHandle(forUpdating: shard)
        try handle.seek(toOffset: 100)
        let byte = try XCTUnwrap(try handle.read(upToCount: 1))
        try handle.seek(toOffset: 100)
        try handle.write(contentsOf: [byte[0] ^ 0xFF])
        try handle.close()

        let verify = try ProcessRunner.run(ProcessRunner.product("transcriptile"), ["checkpoint", "verify", run.path])
        XCTAssertEqual(verify.status, 2, verify.output)
        XCTAssertTrue(verify.stderr.contains("step-00000012: checkpoint") && verify.stderr.contains("shard-0001.tzst: XXH64"), verify.output)

        let (resumed, _) = try train(file, workers: 2, runDirectory: run.lastPathComponent, ["train.steps=14"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.stderr.contains("passing over step-00000012") && resumed.stderr.contains("shard-0001.tzst"), resumed.output)
        XCTAssertTrue(resumed.stdout.contains("resuming from \(run.path)/checkpoints/step-00000008 at step 8"), resumed.output)

        let (other, _) = try train(file, workers: 2, runDirectory: run.lastPathComponent, ["train.steps=20", "model.hidden=[16]"])
        XCTAssertEqual(other.status, 2, other.output)
        XCTAssertTrue(other.stderr.contains("was saved by another set-up") && other.stderr.contains("model:"), other.output)
    }

    /// A newest checkpoint whose manifest claims an arena of 2⁶² elements (or anything else out
    /// of bounds) is refused before anything is allocated: `verify` exits 2 naming it, and
    /// `--resume auto` passes over it to the previous one.
    func testCheckpointWithAnImpossibleManifestIsPassedOver() throws {
        let file = try config("checkpoint: {every_steps: 4}")
        let (first, run) = try train(file, workers: 2)
        XCTAssertEqual(first.status, 0, first.output)
        let manifest = run.appendingPathComponent("checkpoints/step-00000012/manifest.json")
        var json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: manifest)) as? [String: Any])
        var arenas = try XCTUnwrap(json["arenas"] as? [[String: Any]])
        arenas[0]["count"] = 1 << 62
        json["arenas"] = arenas
        try JSONSerialization.data(withJSONObject: json).write(to: manifest)

        let verify = try ProcessRunner.run(ProcessRunner.product("transcriptile"), ["checkpoint", "verify", run.path])
        XCTAssertEqual(verify.status, 2, verify.output)
        XCTAssertTrue(verify.stderr.contains("step-00000012: checkpoint") && verify.stderr.contains("4611686018427387904 elements"), verify.output)
        let (resumed, _) = try train(file, workers: 2, runDirectory: run.lastPathComponent, ["train.steps=14"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.stderr.contains("passing over step-00000012"), resumed.output)
        XCTAssertTrue(resumed.stdout.contains("resuming from \(run.path)/checkpoints/step-00000008 at step 8"), resumed.output)
    }

    /// The disk fills up after the first checkpoint (a 64 MB tmpfs holds the run directory, and a
    /// filler file takes all but 1.5 MB once step 200 is committed: room for the records, not
    /// for a 2 MB shard): the later saves fail loudly naming the file and the reason, leave no
    /// partial directory, the run exits 1 for its lost final save — and once there is room again
    /// the run resumes from step 200.
    func testFullDiskFailsTheSaveLoudlyAndKeepsThePreviousCheckpoint() throws {
        let disk = Self.scratch.appendingPathComponent("small-disk-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: disk, withIntermediateDirectories: true)
        let mount = try ProcessRunner.run("/bin/mount", ["-t", "tmpfs", "-o", "size=64m", "tmpfs", disk.path])
        guard mount.status == 0 else { throw XCTSkip("making a small file system needs root (mount -t tmpfs): \(mount.output)") }
        defer { _ = try? ProcessRunner.run("/bin/umount", [disk.path]) }
        let run = disk.appendingPathComponent("run"), filler = disk.appendingPathComponent("filler")
        let file = try config("checkpoint: {every_steps: 200}")
        let sets = ["train.steps=600", "evaluation.every_steps=0", "model.hidden=[2048]"]

        let fill = Thread {
            let latest = run.appendingPathComponent("checkpoints/LATEST")
            for _ in 0..<1500 where !FileManager.default.fileExists(atPath: latest.path) { Thread.sleep(forTimeInterval: 0.02) }
            guard let handle = FileManager.default.createFile(atPath: filler.path, contents: nil) ? FileHandle(forWritingAtPath: filler.path) : nil else { return }
            let block = Data(count: 1 << 16)
            while (try? handle.write(contentsOf: block)) != nil {}
            try? handle.truncate(atOffset: max(0, ((try? handle.offset()) ?? 0) - (3 << 19)))
            try? handle.close()
        }
        fill.start()
        let (full, _) = try train(file, workers: 2, runDirectory: "\(disk.lastPathComponent)/run", sets, timeout: 240)
        XCTAssertEqual(full.status, 1, "the final save was lost\n" + full.output)
        XCTAssertTrue(full.stderr.contains("CHECKPOINT AT STEP 400 FAILED") && full.stderr.contains("CHECKPOINT AT STEP 600 FAILED"), full.output)
        XCTAssertTrue(full.stderr.contains("No space left on device") && full.stderr.contains("shard-000"), "names the file and the reason\n" + full.output)
        XCTAssertTrue(full.stderr.contains("the previous checkpoint, step-00000200, is intact"), full.output)
        XCTAssertEqual(checkpoints(run), ["step-00000200"], "no partial checkpoint is left behind")
        XCTAssertEqual(try parameterHash(run).count, 64, "summary.json is written")
        let verify = try ProcessRunner.run(ProcessRunner.product("transcriptile"), ["checkpoint", "verify", run.path])
        XCTAssertEqual(verify.status, 0, verify.output)

        try FileManager.default.removeItem(at: filler)
        let (resumed, _) = try train(file, workers: 2, runDirectory: "\(disk.lastPathComponent)/run", sets, timeout: 240)
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.stdout.contains("resuming from \(run.path)/checkpoints/step-00000200 at step 200"), resumed.output)
    }

    /// A worker killed outright in the middle of saving (checkpoints every step of a model
    /// whose save takes most of the step): the job ends naming the rank, the newest committed
    /// checkpoint verifies, the interrupted one is never used, and the run resumes.
    func testWorkerKilledDuringASaveLeavesTheLastCheckpointValid() throws {
        let file = try config("checkpoint: {every_steps: 1, keep_last: 3}")
        let sets = ["train.steps=100000", "evaluation.every_steps=0", "model.hidden=[4096]"]
        let name = "killed-in-save-\(UUID().uuidString)", run = Self.scratch.appendingPathComponent(name)
        let killer = Thread {
            let latest = run.appendingPathComponent("checkpoints/LATEST")
            for _ in 0..<3000 where !FileManager.default.fileExists(atPath: latest.path) { Thread.sleep(forTimeInterval: 0.02) }
            Thread.sleep(forTimeInterval: 0.5)
            let pids = (try? ProcessRunner.run("/usr/bin/pgrep", ["-n", "-f", "transcriptile-worker"]).stdout) ?? ""
            if let pid = Int32(pids.trimmingCharacters(in: .whitespacesAndNewlines)) { kill(pid, SIGKILL) }
        }
        killer.start()
        let (killed, _) = try train(file, workers: 2, runDirectory: name, sets, timeout: 120)
        XCTAssertNotEqual(killed.status, 0, killed.output)
        XCTAssertTrue(killed.output.contains("rank 2"), killed.output)
        let newest = try XCTUnwrap(checkpoints(run).last(where: { FileManager.default.fileExists(atPath: run.appendingPathComponent("checkpoints/\($0)/manifest.json").path) }))
        let verify = try ProcessRunner.run(ProcessRunner.product("transcriptile"), ["checkpoint", "verify", run.path])
        XCTAssertTrue(verify.stdout.contains(newest) && !verify.stderr.contains(newest), verify.output)

        let stoppedAt = Int(newest.dropFirst("step-".count))!
        let (resumed, _) = try train(file, workers: 2, runDirectory: name, ["train.steps=\(stoppedAt + 3)", "evaluation.every_steps=0", "model.hidden=[4096]"], timeout: 120)
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.stdout.contains("resuming from \(run.path)/checkpoints/\(newest) at step \(stoppedAt)"), resumed.output)
    }
}
