import Foundation
import Training
import XCTest

final class RunConfigTests: XCTestCase {
    private func load(_ yaml: String, _ overrides: [String] = []) throws -> EffectiveConfig {
        try ConfigLoader.load(yaml: yaml, source: "run.yaml", overrides: overrides, baseDirectory: URL(fileURLWithPath: "/configs"))
    }

    private func message(_ yaml: String, _ overrides: [String] = []) -> String {
        do {
            _ = try load(yaml, overrides)
            return "no error"
        } catch { return "\(error)" }
    }

    /// Every config the repository ships (runs and paper-scale models) loads and checks.
    func testShippedConfigsLoad() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let files = ["cluster-configs/runs", "cluster-configs/models"].flatMap { folder in
            ((try? FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent(folder).path)) ?? [])
                .filter { $0.hasSuffix(".yaml") }.map { root.appendingPathComponent(folder).appendingPathComponent($0) }
        }
        XCTAssertGreaterThanOrEqual(files.count, 4, "\(files)")
        for file in files {
            XCTAssertNoThrow(try ConfigLoader.load(file: file), file.lastPathComponent)
        }
        let paper = try ConfigLoader.load(file: root.appendingPathComponent("cluster-configs/models/rna-cdm-vae.yaml"))
        XCTAssertEqual(paper.config.task, "rna-vae")
        XCTAssertEqual(paper.config.train.globalBatch, 128)
        XCTAssertEqual(paper.config.train.epochs, 250)
        XCTAssertTrue(paper.yaml.contains("hidden:\n  - 6000\n  - 4000") || paper.yaml.contains("[6000, 4000]"), paper.yaml)
    }

    func testDefaultsFillEveryKeyNotGivenAndRelativeCohortsResolveAgainstTheFile() throws {
        let effective = try load("cohort: data/sim\ntrain:\n  steps: 5\n")
        XCTAssertEqual(effective.config.train.steps, 5)
        XCTAssertEqual(effective.config.train.globalBatch, 64)
        XCTAssertEqual(effective.config.exchange.algorithm, .mpi)
        XCTAssertEqual(effective.config.cohort, "/configs/data/sim")
        XCTAssertTrue(effective.yaml.contains("global_batch: 64"), effective.yaml)
        XCTAssertTrue(effective.yaml.contains("hidden:"), "the task's model defaults are part of the effective config\n" + effective.yaml)
    }

    func testOverridesApplyToAnyKeyIncludingNestedAndModelKeys() throws {
        let effective = try load("cohort: /c\ntrain: {steps: 5}\n", ["train.steps=200", "exchange.algorithm=reproducible", "model.hidden=[32]", "threads_per_rank=2"])
        XCTAssertEqual(effective.config.train.steps, 200)
        XCTAssertEqual(effective.config.exchange.algorithm, .reproducible)
        XCTAssertEqual(effective.config.threadsPerRank, 2)
        XCTAssertTrue(effective.yaml.contains("- 32"), effective.yaml)
    }

    func testUnknownKeysAreErrorsWithTheLineAndASuggestion() {
        let text = message("cohort: /c\ntrain:\n  stpes: 5\n")
        XCTAssertTrue(text.contains("run.yaml:3: unknown key 'train.stpes' (did you mean 'steps'?)"), text)
        XCTAssertTrue(text.contains("known keys here: steps, epochs, global_batch"), text)
        let top = message("cohort: /c\nlearning_rate: 0.1\ntrain: {steps: 1}\n")
        XCTAssertTrue(top.contains("run.yaml:2: unknown key 'learning_rate'"), top)
        let model = message("cohort: /c\ntrain: {steps: 1}\nmodel:\n  hiden: [3]\n")
        XCTAssertTrue(model.contains("run.yaml:4: unknown key 'model.hiden' (did you mean 'hidden'?)"), model)
        let override = message("cohort: /c\ntrain: {steps: 1}\n", ["train.stepz=3"])
        XCTAssertTrue(override.contains("--set train.stepz=3: unknown key 'train.stepz' (did you mean 'steps'?)"), override)
        XCTAssertTrue(message("cohort: /c\ntrain: {steps: 1}\n", ["train.steps"]).contains("expected key.path=value"))
    }

    func testWrongTypesAndRangesNameTheirKey() {
        let type = message("cohort: /c\ntrain:\n  steps: many\n")
        XCTAssertTrue(type.contains("train.steps: expected an integer"), type)
        XCTAssertTrue(type.contains("line 3"), type)
        let algorithm = message("cohort: /c\ntrain: {steps: 1}\nexchange: {algorithm: nccl}\n")
        XCTAssertTrue(algorithm.contains("exchange.algorithm"), algorithm)
        let stage = message("cohort: /c\ntrain: {steps: 1}\nexchange: {zero_stage: 2}\n")
        XCTAssertTrue(stage.contains("exchange.zero_stage: must be 0 (off) or 1 (ZeRO-1), got 2"), stage)
        let range = message("cohort: /c\ntrain: {steps: 1, global_batch: 8, micro_batch: 16}\n")
        XCTAssertTrue(range.contains("train.micro_batch: must be in 0…train.global_batch (8), got 16"), range)
        XCTAssertTrue(message("train: {steps: 1}\n").contains("cohort: required"))
        XCTAssertTrue(message("cohort: /c\n").contains("train.steps / train.epochs: set one of them"))
        XCTAssertTrue(message("cohort: /c\ntrain: {steps: 1}\nmodel: {dropout: 1.5}\n").contains("model: dropout: must be in [0, 1), got 1.5"))
        XCTAssertTrue(message("task: vae9\n").contains("task: unknown task 'vae9'; known tasks: cancer-type"))
        XCTAssertTrue(message("cohort: [unclosed\n").contains("not valid YAML"))
        XCTAssertTrue(message("- a list\n").contains("must be a mapping"))
    }

    /// A bad --set value is blamed on the --set, not on "line 1" of the config.
    func testASetValueIsBlamedOnTheSet() {
        let text = message("task: cancer-type\ncohort: c\ntrain: {steps: 5}\n", ["train.global_batch=abc"])
        XCTAssertTrue(text.contains("train.global_batch: expected an integer, got 'abc' (from --set train.global_batch=abc)"), text)
        XCTAssertFalse(text.contains("line"), text)
        XCTAssertFalse(text.hasPrefix("run.yaml"), text)
        let model = message("task: cancer-type\ncohort: c\ntrain: {steps: 5}\n", ["model.dropout=lots"])
        XCTAssertTrue(model.contains("(from --set model.dropout=lots)"), model)
        let inFile = message("task: cancer-type\ncohort: c\ntrain:\n  steps: 5\n  global_batch: abc\n")
        XCTAssertTrue(inFile.contains("run.yaml: train.global_batch: expected an integer, got 'abc' (line 5)"), inFile)
    }

    /// One rule for paths: relative to the file when written in it, to the working directory
    /// when given on the command line; the effective config holds them absolute.
    func testPathsAreRelativeToWhereTheyWereWritten() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("paths-\(UUID().uuidString)/configs")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        let file = folder.appendingPathComponent("demo.yaml")
        try "task: cancer-type\ncohort: data/cohort\nrun_dir: out/run\ntrain: {steps: 5}\n".write(to: file, atomically: true, encoding: .utf8)
        let here = FileManager.default.currentDirectoryPath
        let fromFile = try ConfigLoader.load(file: file)
        XCTAssertEqual(fromFile.config.cohort, folder.appendingPathComponent("data/cohort").path)
        XCTAssertEqual(fromFile.config.runDir, folder.appendingPathComponent("out/run").path)
        XCTAssertTrue(fromFile.yaml.contains("run_dir: \(folder.path)/out/run"), fromFile.yaml)
        let fromCommandLine = try ConfigLoader.load(file: file, overrides: ["cohort=c2", "run_dir=r2"])
        XCTAssertEqual(fromCommandLine.config.cohort, URL(fileURLWithPath: here).appendingPathComponent("c2").path)
        XCTAssertEqual(fromCommandLine.config.runDir, URL(fileURLWithPath: here).appendingPathComponent("r2").path)
        try "task: cancer-type\ncohort: /abs/cohort\ntrain: {steps: 5}\n".write(to: file, atomically: true, encoding: .utf8)
        let defaults = try ConfigLoader.load(file: file)
        XCTAssertEqual(defaults.config.cohort, "/abs/cohort")
        XCTAssertEqual(defaults.config.runDir, URL(fileURLWithPath: here).appendingPathComponent("runs/demo").path, "unset: runs/<config name> here")
    }
}
