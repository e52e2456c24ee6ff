import Foundation
import TestSupport
import XCTest

/// The bad-input corpus: every config key's wrong-type and out-of-range values, every command's
/// degenerate arguments (0, negative, empty, a missing file, a file where a directory is
/// expected) and crafted files, run through the real executables (`transcriptile`, and
/// `launch/train` starting the coordinator and a worker under mpirun).
///
/// Each case must end with its expected exit status (2: bad input, 1: a failure at run time,
/// 0 where stated), with a message on stderr naming the key, option, file or row, and without a
/// crash (no backtrace, no signal, no status ≥ 128), without Swift's or Foundation's own error
/// text in place of advice, and without HDF5's error stack. A failure before training must leave
/// no run directory behind; files a case must not touch are compared before and after; each case
/// runs in an empty working directory of its own, which must stay empty.
///
/// The corpus is a table, and it must keep up with the program: config keys are read from the
/// effective config of a real run of every task (`config.yaml`), commands and their options from
/// `transcriptile --help` (recursively) and `launch/train --help`; a key, command or option
/// without a case fails the test. Each group reports all its failing cases in one failure, each
/// with its command line, exit status and the start of its stderr.
final class BadInputCorpusTests: XCTestCase {
    nonisolated(unsafe) private static var shared: Fixture?

    override func setUpWithError() throws {
        try XCTSkipIf(RankTests.isRankProcess, "launches its own processes")
    }

    override class func tearDown() {
        if let shared { try? FileManager.default.removeItem(at: shared.root) }
        shared = nil
    }

    private func fixture() throws -> Fixture {
        if let fixture = Self.shared { return fixture }
        let fixture = try Fixture()
        Self.shared = fixture
        return fixture
    }

    // MARK: - Config keys

    func testEveryConfigKeyRejectsWrongTypesAndOutOfRangeValues() throws {
        let f = try fixture()
        var cases = [Case]()
        for key in Self.configKeys {
            let task = key.task ?? "rna-vae"
            for value in key.kind.wrongTypes + key.bad {
                cases.append(f.configCase(key: key, task: task, value: value))
            }
        }
        // Whole sections: a scalar where a mapping belongs, and a misspelt key inside one.
        for section in f.sections(of: "rna-vae") {
            cases.append(f.trainCase("section \(section)=5", covers: ["section \(section)"], task: "rna-vae",
                                     sets: ["\(section)=5"], names: [[section]]))
            cases.append(f.trainCase("section \(section)={stepz: 5}", covers: ["section \(section)"], task: "rna-vae",
                                     sets: ["\(section)={stepz: 5}"], names: [["stepz"]]))
        }
        // Values that are only wrong together.
        cases += [
            f.trainCase("train.global_batch=2 on 3 workers", covers: ["train.global_batch"], task: "rna-vae", workers: 3,
                        sets: ["train.global_batch=2", "train.micro_batch=0"], names: [Self.keyNames("train.global_batch")]),
            f.trainCase("train.split.validation=0 with evaluation.patience=2", covers: ["train.split.validation", "evaluation.patience"],
                        task: "rna-vae", sets: ["train.split.validation=0", "evaluation.every_steps=1", "evaluation.patience=2"],
                        names: [Self.keyNames("train.split.validation")]),
            f.trainCase("evaluation.patience=3 without evaluation.every_steps", covers: ["evaluation.patience"], task: "rna-vae",
                        sets: ["evaluation.patience=3", "evaluation.every_steps=0"], names: [Self.keyNames("evaluation.every_steps")]),
            f.trainCase("train.steps=0 and train.epochs=0", covers: ["train.steps", "train.epochs"], task: "rna-vae",
                        sets: ["train.steps=0", "train.epochs=0"], names: [Self.keyNames("train.steps")]),
            f.trainCase("schedule.warmup_steps=train.steps", covers: ["schedule.warmup_steps"], task: "rna-vae",
                        sets: ["schedule.warmup_steps=2"], names: [Self.keyNames("schedule.warmup_steps")]),
            f.trainCase("train.micro_batch=1 (rna-vae: BatchNorm)", covers: ["train.micro_batch"], task: "rna-vae",
                        sets: ["train.micro_batch=1"], names: [Self.keyNames("train.micro_batch")]),
            // A learning rate that is finite but absurd may be refused up front or end the run
            // at its first step with a message naming it (a runtime failure).
            f.trainCase("optimizer.lr=1e300", covers: ["optimizer.lr"], task: "rna-vae", sets: ["optimizer.lr=1e300"],
                        status: [1, 2], names: [Self.keyNames("optimizer.lr")], pretraining: false),
        ]
        cases += try f.pathKeyCases()
        var failures = runCases(cases, width: 8)

        // Every key of every task's effective config has cases; no case names a key that is gone.
        let known = knownTasks(in: cases, results: failures.results)
        var coverage = [String]()
        if known.isEmpty { coverage.append("could not read the known tasks from `--set task=no-such-task`") }
        var effective = Set<String>()
        for task in known {
            guard let keys = f.effectiveKeys[task] else {
                coverage.append("task \(task) has no corpus config (add one to Fixture.taskModels and its model keys to configKeys)")
                continue
            }
            for key in keys { effective.insert(key.hasPrefix("model.") ? "\(task):\(key)" : key) }
        }
        print("BadInputCorpusTests: \(effective.count) config keys in the effective configs of \(known.joined(separator: ", "))")
        if effective.isEmpty { coverage.append("could not read the keys of any task's effective config (config.yaml of the baseline runs)") }
        let table = Set(Self.configKeys.map { $0.id })
        for key in effective.subtracting(table).sorted() {
            coverage.append("config key \(key) is in the effective config but has no corpus case (add it to configKeys)")
        }
        for key in table.subtracting(effective).sorted() where !effective.isEmpty {
            coverage.append("config key \(key) has corpus cases but is not in any effective config (renamed or removed?)")
        }
        failures.problems.insert(contentsOf: coverage, at: 0)
        report("config keys", failures)
    }

    /// One config key: its kind (for the wrong-type values) and the values out of its range.
    struct Key: Sendable {
        enum Kind: Sendable {
            case int, number, string, bool, intList, mappingList
            var wrongTypes: [String] {
                switch self {
                case .int: ["abc", "1.5", "[1]", ".inf"]
                case .number: ["abc", "[1]", "{a: 1}"]
                case .string: ["[1, 2]", "{a: 1}"]
                case .bool: ["maybe", "2", "[true]"]
                case .intList: ["abc", "[a]", "{a: 1}", "16"]
                case .mappingList: ["abc", "[a]", "{a: 1}", "16"]
                }
            }
        }
        var name: String
        var task: String? = nil
        var kind: Kind
        var bad: [String]
        var id: String { task.map { "\($0):\(name)" } ?? name }
    }

    /// Every key of the effective config: a new key fails the coverage check until it joins.
    /// `cohort`, `run_dir` and `train.init_from` paths are added by the fixture (they need real files).
    static let configKeys: [Key] = {
        var keys: [Key] = [
            Key(name: "task", kind: .string, bad: ["no-such-task", "", "''"]),
            Key(name: "cohort", kind: .string, bad: ["", "''"]),
            Key(name: "run_dir", kind: .string, bad: []),
            Key(name: "train.init_from", kind: .string, bad: []),
            Key(name: "companions.rna_encoder", kind: .string, bad: []),
            Key(name: "companions.fraction_regressor", kind: .string, bad: []),
            Key(name: "companions.lower_stage", kind: .string, bad: []),
            Key(name: "threads_per_rank", kind: .int, bad: ["0", "-1", "1025", "99999999999999999"]),
            Key(name: "optimizer.name", kind: .string, bad: ["no-such-optimizer", "''"]),
            Key(name: "optimizer.lr", kind: .number, bad: ["0", "-1", ".inf", ".nan"]),
            Key(name: "optimizer.weight_decay", kind: .number, bad: ["-1", ".inf", ".nan"]),
            Key(name: "optimizer.beta1", kind: .number, bad: ["1.5", "1", "-0.1", ".nan"]),
            Key(name: "optimizer.beta2", kind: .number, bad: ["1.5", "1", "-0.1", ".nan"]),
            Key(name: "optimizer.epsilon", kind: .number, bad: ["0", "-1", ".inf", ".nan"]),
            Key(name: "optimizer.momentum", kind: .number, bad: ["1", "1.5", "-0.1", ".nan"]),
            Key(name: "optimizer.clip_norm", kind: .number, bad: ["-1", ".nan"]),
            Key(name: "schedule.warmup_steps", kind: .int, bad: ["-1", "99999999999999999"]),
            Key(name: "schedule.min_lr", kind: .number, bad: ["-1", "1", ".nan", ".inf"]),
            Key(name: "train.steps", kind: .int, bad: ["-1", "1000000001", "99999999999999999", "99999999999999999999"]),
            Key(name: "train.epochs", kind: .int, bad: ["-1", "1000001", "99999999999999999"]),
            Key(name: "train.global_batch", kind: .int, bad: ["0", "-1", "1000", "10000001", "99999999999999999"]),
            Key(name: "train.micro_batch", kind: .int, bad: ["-1", "9", "99999999999999999"]),
            Key(name: "train.seed", kind: .int, bad: ["-1", "99999999999999999999"]),
            Key(name: "train.split.train", kind: .number, bad: ["0", "-0.1", "1.5", "0.9", ".nan", ".inf"]),
            Key(name: "train.split.validation", kind: .number, bad: ["-0.1", "1", ".nan", ".inf"]),
            Key(name: "train.drop_last", kind: .bool, bad: []),
            Key(name: "train.ema.decay", kind: .number, bad: ["-0.1", "1", "1.5", ".nan", ".inf"]),
            Key(name: "train.ema.start_step", kind: .int, bad: ["-1", "99999999999999999999"]),
            Key(name: "optimizer.groups", kind: .mappingList, bad: ["[{match: []}]", "[{match: ['']}]", "[{match: ['*'], lr_scale: -1}]",
                                                                     "[{match: ['*'], lr_scale: .nan}]", "[{match: ['*'], lr_scal: 1}]",
                                                                     "[{match: ['no-such-parameter*']}]"]),
            Key(name: "evaluation.every_steps", kind: .int, bad: ["-1"]),
            Key(name: "evaluation.patience", kind: .int, bad: ["-1"]),
            Key(name: "evaluation.min_delta", kind: .number, bad: ["-1", ".nan", ".inf"]),
            Key(name: "checkpoint.every_steps", kind: .int, bad: ["-1"]),
            Key(name: "checkpoint.every_minutes", kind: .number, bad: ["-1", ".nan", ".inf"]),
            Key(name: "checkpoint.keep_last", kind: .int, bad: ["0", "-1"]),
            Key(name: "checkpoint.keep_every", kind: .int, bad: ["-1"]),
            Key(name: "checkpoint.at_end", kind: .bool, bad: []),
            Key(name: "exchange.algorithm", kind: .string, bad: ["no-such-algorithm", "''"]),
            Key(name: "exchange.bucket_mb", kind: .number, bad: ["0", "-1", "4097", "1e300", ".nan", ".inf"]),
            Key(name: "exchange.zero_stage", kind: .int, bad: ["-1", "2"]),
            Key(name: "liveness.timeout_s", kind: .number, bad: ["0", "-1", "86401", "1e300", ".nan", ".inf"]),
            Key(name: "progress.every_s", kind: .number, bad: ["0", "-1", ".nan", ".inf"]),
        ]
        let hidden = ["[]", "[0]", "[-1]", "[16, 0]", "[99999999999]"]
        let dropout = ["-0.1", "1", "1.5", ".nan", ".inf"]
        keys += [
            Key(name: "model.hidden", task: "cancer-type", kind: .intList, bad: hidden),
            Key(name: "model.dropout", task: "cancer-type", kind: .number, bad: dropout),
            Key(name: "model.hidden", task: "rna-vae", kind: .intList, bad: hidden),
            Key(name: "model.latent", task: "rna-vae", kind: .int, bad: ["0", "-1", "99999999999"]),
            Key(name: "model.dropout", task: "rna-vae", kind: .number, bad: dropout),
            Key(name: "model.beta", task: "rna-vae", kind: .number, bad: ["-1", ".nan", ".inf"]),
            Key(name: "model.leaky_slope", task: "rna-vae", kind: .number, bad: ["-1", ".nan", ".inf"]),
            Key(name: "model.hidden", task: "survival-cox", kind: .intList, bad: hidden),
            Key(name: "model.dropout", task: "survival-cox", kind: .number, bad: dropout),
            Key(name: "model.depth", task: "tile-classifier", kind: .int, bad: ["0", "-1", "5", "99999999999"]),
            Key(name: "model.width", task: "tile-classifier", kind: .int, bad: ["0", "-1", "99999999999"]),
            Key(name: "model.dropout", task: "tile-classifier", kind: .number, bad: dropout),
            Key(name: "model.depth", task: "multimodal-cancer-type", kind: .int, bad: ["0", "-1", "5", "99999999999"]),
            Key(name: "model.width", task: "multimodal-cancer-type", kind: .int, bad: ["0", "-1", "99999999999"]),
            Key(name: "model.attention", task: "multimodal-cancer-type", kind: .int, bad: ["0", "-1", "99999999999"]),
            Key(name: "model.hidden", task: "multimodal-cancer-type", kind: .intList, bad: hidden),
            Key(name: "model.features", task: "multimodal-cancer-type", kind: .int, bad: ["0", "-1", "99999999999"]),
            Key(name: "model.dropout", task: "multimodal-cancer-type", kind: .number, bad: dropout),
            Key(name: "model.max_tiles", task: "multimodal-cancer-type", kind: .int, bad: ["0", "-1", "4097"]),
            Key(name: "model.modulation.alpha", task: "multimodal-cancer-type", kind: .number, bad: ["-1", "11", ".nan", ".inf"]),
            Key(name: "model.modulation.start_step", task: "multimodal-cancer-type", kind: .int, bad: ["-1"]),
            Key(name: "model.modulation.end_step", task: "multimodal-cancer-type", kind: .int, bad: ["-1"]),
            Key(name: "model.depth", task: "tile-fractions", kind: .int, bad: ["0", "-1", "5", "99999999999"]),
            Key(name: "model.width", task: "tile-fractions", kind: .int, bad: ["0", "-1", "99999999999"]),
            Key(name: "model.dropout", task: "tile-fractions", kind: .number, bad: dropout),
        ]
        let fraction = ["-0.1", "1", ".nan", ".inf"]
        keys += [
            Key(name: "model.stage", kind: .string, bad: ["no-such-stage", "''"]),
            Key(name: "model.image_size", kind: .int, bad: ["0", "-1", "7", "12", "99999999999"]),
            Key(name: "model.lowres_size", kind: .int, bad: ["-1", "4"]),
            Key(name: "model.dim", kind: .int, bad: ["0", "-1", "3", "1025", "99999999999"]),
            Key(name: "model.dim_mults", kind: .intList, bad: ["[]", "[0]", "[-1]", "[1, 2, 3, 4, 5, 6, 7]", "[99999999999]"]),
            Key(name: "model.blocks_per_level", kind: .int, bad: ["0", "-1", "9"]),
            Key(name: "model.attention_levels", kind: .intList, bad: ["[5]", "[-1]"]),
            Key(name: "model.heads", kind: .int, bad: ["0", "-1", "3", "65"]),
            Key(name: "model.groups", kind: .int, bad: ["0", "-1", "3", "65"]),
            Key(name: "model.condition_dim", kind: .int, bad: ["0", "-1", "99999999999"]),
            Key(name: "model.schedule", kind: .string, bad: ["no-such-schedule", "''"]),
            Key(name: "model.timesteps", kind: .int, bad: ["0", "1", "-1", "10001"]),
            Key(name: "model.p2_gamma", kind: .number, bad: ["-1", "5", ".nan", ".inf"]),
            Key(name: "model.condition_drop", kind: .number, bad: fraction),
            Key(name: "model.lowres_noise_level", kind: .number, bad: fraction),
            Key(name: "model.evaluation_patients", kind: .int, bad: ["-1", "1001"]),
            Key(name: "model.evaluation_steps", kind: .int, bad: ["0", "-1", "1001"]),
        ].map { key in var key = key; key.task = "rna-cdm-diffusion"; return key }
        return keys
    }()

    /// The ways a message may name `key`: "a.b.c", "a.b: … c" (the section, then the leaf), or
    /// "a: b.c" (the top section, then the rest).
    static func keyNames(_ key: String) -> [String] {
        var names = [key]
        if let dot = key.lastIndex(of: ".") {
            names.append("\(key[..<dot]): \(key[key.index(after: dot)...])")
            names.append("\(key[..<dot])…\(key[key.index(after: dot)...])")  // section, then the leaf later on
        }
        if let first = key.firstIndex(of: "."), first != key.lastIndex(of: ".") {
            names.append("\(key[..<first]): \(key[key.index(after: first)...])")  // the top section, then the rest (model: modulation.alpha)
        }
        return names
    }

    private func knownTasks(in cases: [Case], results: [String: ProcessRunner.Result]) -> [String] {
        guard let result = results["task=no-such-task"], let range = result.stderr.range(of: "known tasks: ") else { return [] }
        let line = result.stderr[range.upperBound...].prefix { $0 != "\n" }
        return line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    // MARK: - Commands

    func testEveryCommandRejectsDegenerateArguments() throws {
        let f = try fixture()
        let cases = f.commandCases()
        var failures = runCases(cases, width: 4)

        // Every command and every option that takes a value has cases.
        let covered = Set(cases.flatMap(\.covers))
        var coverage = [String]()
        let commands = try Self.commands(), trainOptions = try Self.trainOptions()
        print("BadInputCorpusTests: \(commands.count) commands with \(commands.map(\.options.count).reduce(0, +)) options and arguments, "
              + "launch/train with \(trainOptions.count) options, read from the help texts")
        if commands.isEmpty { coverage.append("could not read the subcommands from `transcriptile --help`") }
        for command in commands {
            if !covered.contains(command.name) { coverage.append("command `transcriptile \(command.name)` has no corpus case") }
            for option in command.options where !covered.contains("\(command.name) \(option)") {
                coverage.append("option `transcriptile \(command.name) \(option)` has no corpus case")
            }
        }
        for option in trainOptions where !covered.contains("launch/train \(option)") {
            coverage.append("option `launch/train \(option)` has no corpus case")
        }
        failures.problems.insert(contentsOf: coverage, at: 0)
        report("commands", failures)
    }

    struct Command { var name: String; var options: [String] }

    /// The leaf subcommands of `transcriptile` and the options of each that take a value
    /// (`--tiles`) and its arguments (`<directory>`), from the help texts.
    static func commands(_ path: [String] = []) throws -> [Command] {
        let help = try ProcessRunner.run(ProcessRunner.product("transcriptile"), path + ["--help"], timeout: 30).stdout
        let subcommands = section("SUBCOMMANDS:", of: help).compactMap { line -> String? in
            guard line.hasPrefix("  "), !line.hasPrefix("   ") else { return nil }
            let name = line.dropFirst(2).prefix { !$0.isWhitespace }
            return name.isEmpty || name == "See" ? nil : String(name)
        }
        if subcommands.isEmpty {
            guard !path.isEmpty else { return [] }
            var options = [String]()
            for line in section("OPTIONS:", of: help) where line.hasPrefix("  --") {
                let parts = line.dropFirst(2).split(separator: " ", maxSplits: 2)
                if parts.count >= 2, parts[1].hasPrefix("<") { options.append(String(parts[0])) }
            }
            for line in section("ARGUMENTS:", of: help) where line.hasPrefix("  <") {
                options.append(String(line.dropFirst(2).prefix { $0 != ">" }) + ">")
            }
            return [Command(name: path.joined(separator: " "), options: options)]
        }
        return try subcommands.flatMap { try commands(path + [$0]) }
    }

    /// `launch/train`'s options that take a value, from its help (`  --workers <n>   …`: those of
    /// `transcriptile train`, which it runs).
    static func trainOptions() throws -> [String] {
        let help = try ProcessRunner.run(ProcessRunner.repositoryRoot.appendingPathComponent("launch/train").path, ["--help"],
                                         environment: ["TRANSCRIPTILE_BIN": ProcessRunner.productsFolder.path], timeout: 30)
        return help.stdout.split(separator: "\n").compactMap { line in
            let parts = line.dropFirst(2).split(separator: " ", maxSplits: 2)
            guard line.hasPrefix("  --"), parts.count >= 2, parts[1].hasPrefix("<") else { return nil }
            return String(parts[0])
        }
    }

    private static func section(_ title: String, of help: String) -> [String] {
        var lines = [String](), inside = false
        for line in help.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line == title { inside = true; continue }
            if inside, !line.isEmpty, !line.hasPrefix(" ") { break }
            if inside { lines.append(line) }
        }
        return lines
    }

    // MARK: - Files

    func testBadFilesAreRefusedNamingThemAndLeftAlone() throws {
        let f = try fixture()
        report("files", runCases(try f.fileCases(), width: 4))
    }

    // MARK: - Running the table

    struct Case: Sendable {
        enum Program: Sendable { case transcriptile, train, mpirun(Int) }
        var name: String
        /// What the case counts for in the coverage checks: "data inspect", "data inspect --tiles",
        /// "train.steps", "rna-vae:model.latent", "launch/train --workers".
        var covers: [String]
        var program: Program = .transcriptile
        var arguments: [String]
        var status: Set<Int32> = [2]
        /// Each entry: alternatives, one of which stderr must contain (a "a…b" entry: a, then b).
        var names: [[String]] = []
        /// Paths that must not exist afterwards (a run directory of a failure before training).
        var absent: [String] = []
        /// Files and directories that must be exactly as they were (contents, or listing).
        var unchanged: [String] = []
        var check: (@Sendable (ProcessRunner.Result) -> String?)? = nil
        var timeout: TimeInterval = 120

        var commandLine: String {
            let program: String = switch self.program {
            case .transcriptile: "transcriptile"
            case .train: "launch/train"
            case let .mpirun(ranks): "launch/mpirun -np \(ranks) transcriptile"
            }
            return ([program] + arguments.map(Self.quoted)).joined(separator: " ")
        }

        static func quoted(_ argument: String) -> String {
            if argument.isEmpty { return "''" }
            return argument.contains(where: { " {}[]'\"$*?".contains($0) }) ? "'\(argument)'" : argument
        }
    }

    struct Failures {
        var problems = [String]()
        var results = [String: ProcessRunner.Result]()
        var count = 0
    }

    static let crashMarkers = ["Stack dump", "Fatal error", "Illegal instruction", "Segmentation fault", "SIGILL", "SIGSEGV",
                               "SIGABRT", "precondition", "Backtrace", "Current stack trace", "core dumped"]

    /// Text of Swift's and Foundation's own errors: a message that shows it tells the user nothing.
    static let internalMarkers = ["Expected to decode", "Error Domain=", "Cannot initialize", "DecodingError", "(null)",
                                  "The operation could not be completed"]

    /// Runs every case (`width` at a time) and lists each failing one with its output.
    private func runCases(_ cases: [Case], width: Int) -> Failures {
        final class Box: @unchecked Sendable {
            let lock = NSLock()
            var problems = [(Int, String)]()
            var results = [String: ProcessRunner.Result]()
        }
        let box = Box()
        let slots = DispatchSemaphore(value: width)
        let group = DispatchGroup()
        let started = Date(), batch = UUID().uuidString.prefix(8)
        for (index, item) in cases.enumerated() {
            slots.wait()
            DispatchQueue.global().async(group: group) {
                defer { slots.signal() }
                let before = item.unchanged.map { Self.snapshot($0) }
                let result: ProcessRunner.Result
                let directory = FileManager.default.temporaryDirectory
                    .appendingPathComponent("transcriptile-bad-input-\(getpid())/cwd-\(batch)-\(index)")
                do {
                    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                    result = try Self.execute(item, in: directory)
                } catch {
                    box.lock.withLock { box.problems.append((index, "✗ \(item.name): `\(item.commandLine)` did not start: \(error)")) }
                    return
                }
                let after = item.unchanged.map { Self.snapshot($0) }
                var problems = Self.problems(item, result, unchangedBefore: before, after: after)
                let strays = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
                if !strays.isEmpty { problems.append("wrote \(strays.sorted().joined(separator: ", ")) into its working directory") }
                box.lock.withLock {
                    box.results[item.name] = result
                    if !problems.isEmpty {
                        box.problems.append((index, "✗ \(item.name): `\(item.commandLine)` → exit \(result.status): "
                            + problems.joined(separator: "; ") + "\n" + Self.tail(result)))
                    }
                }
            }
        }
        group.wait()
        print("BadInputCorpusTests: \(cases.count) cases in \(String(format: "%.0f", Date().timeIntervalSince(started))) s, "
              + "\(box.problems.count) failing")
        return Failures(problems: box.problems.sorted { $0.0 < $1.0 }.map(\.1), results: box.results, count: cases.count)
    }

    private func report(_ group: String, _ failures: Failures) {
        guard !failures.problems.isEmpty else { return }
        let text = failures.problems.joined(separator: "\n")
        XCTFail("\(group): \(failures.problems.count) problem(s) in \(failures.count) cases\n\(text)")
    }

    private static func execute(_ item: Case, in directory: URL) throws -> ProcessRunner.Result {
        switch item.program {
        case .transcriptile:
            return try ProcessRunner.run(ProcessRunner.product("transcriptile"), item.arguments, directory: directory, timeout: item.timeout)
        case .train:
            return try ProcessRunner.run(
                ProcessRunner.repositoryRoot.appendingPathComponent("launch/train").path, item.arguments,
                environment: ["TRANSCRIPTILE_BIN": ProcessRunner.productsFolder.path], directory: directory, timeout: item.timeout)
        case let .mpirun(ranks):
            return try ProcessRunner.run(
                ProcessRunner.repositoryRoot.appendingPathComponent("launch/mpirun").path,
                ["-np", "\(ranks)", ProcessRunner.product("transcriptile")] + item.arguments, directory: directory, timeout: item.timeout)
        }
    }

    private static func problems(_ item: Case, _ result: ProcessRunner.Result, unchangedBefore before: [String], after: [String]) -> [String] {
        var problems = [String]()
        let output = result.stdout + "\n" + result.stderr
        if result.status == 124 { problems.append("timed out after \(Int(item.timeout)) s") }
        if result.status >= 128 || [132, 134, 139].contains(result.status) { problems.append("ended by a signal (status \(result.status))") }
        if !item.status.contains(result.status) {
            problems.append("expected exit \(item.status.sorted().map(String.init).joined(separator: " or "))")
        }
        let crashes = crashMarkers.filter { output.range(of: $0, options: .caseInsensitive) != nil }
        if !crashes.isEmpty { problems.append("crash output (\(crashes.joined(separator: ", ")))") }
        let jargon = internalMarkers.filter { result.stderr.contains($0) }
        if !jargon.isEmpty, result.status != 0 {
            problems.append("the message is internal error text, not advice (\(jargon.joined(separator: ", ")))")
        }
        if output.contains("HDF5-DIAG") { problems.append("HDF5's own error stack leaks onto stderr (HDF5-DIAG)") }
        if result.status != 0 {
            for alternatives in item.names where !alternatives.contains(where: { contains(result.stderr, $0) }) {
                problems.append("stderr does not name \(alternatives.first.map { "'\($0)'" } ?? "?")")
            }
        }
        for path in item.absent where FileManager.default.fileExists(atPath: path) {
            problems.append("\(path) was written (a failure before training must write nothing)")
        }
        for (index, path) in item.unchanged.enumerated() where before[index] != after[index] {
            problems.append("\(path) was changed")
        }
        if let check = item.check, let problem = check(result) { problems.append(problem) }
        return problems
    }

    /// Whether `text` holds `name`; "a…b" means a, then b later on.
    private static func contains(_ text: String, _ name: String) -> Bool {
        let parts = name.components(separatedBy: "…")
        var rest = text[...]
        for part in parts {
            guard let range = rest.range(of: part) else { return false }
            rest = rest[range.upperBound...]
        }
        return true
    }

    /// A file's contents, or a directory's listing with each entry's contents hashed.
    private static func snapshot(_ path: String) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return "(absent)" }
        if isDirectory.boolValue {
            let entries = (FileManager.default.enumerator(atPath: path)?.allObjects as? [String]) ?? []
            return "dir: " + entries.sorted().map { entry in
                let data = FileManager.default.contents(atPath: path + "/" + entry)
                return "\(entry)=\(data.map { String($0.hashValue) } ?? "-")"
            }.joined(separator: ",")
        }
        return "file: " + ((FileManager.default.contents(atPath: path)?.base64EncodedString()) ?? "(unreadable)")
    }

    /// The first lines of stderr that are not mpirun's banner, for the report.
    private static func tail(_ result: ProcessRunner.Result) -> String {
        let banner = ["-----", "Primary job", "a non-zero exit code", "mpirun detected", "the job to be terminated", "Process name:",
                      "Exit code:", "MPI_ABORT was invoked", "with errorcode", "NOTE: invoking MPI_ABORT", "You may or may not see",
                      "exactly when Open MPI"]
        let lines = result.stderr.split(separator: "\n").map { String($0.prefix(400)) }.filter { line in
            !line.trimmingCharacters(in: .whitespaces).isEmpty && !banner.contains { line.trimmingCharacters(in: .whitespaces).hasPrefix($0) }
        }
        var shown = lines.prefix(5).map { "      stderr: \($0)" }
        if lines.isEmpty {
            shown = result.stdout.split(separator: "\n").suffix(3).map { "      stdout: \($0.prefix(400))" }
        }
        return shown.joined(separator: "\n")
    }
}

// MARK: - The fixture: cohorts, configs, two trained runs, files to point commands at

private final class Fixture: @unchecked Sendable {
    typealias Case = BadInputCorpusTests.Case
    let root: URL
    let data = ProcessRunner.repositoryRoot.appendingPathComponent("Tests/Fixtures/data").path
    /// 60 patients, 64 genes, no tiles; and 6 patients, 16 genes, 2 tiles each.
    let cohort: String, tiledCohort: String
    /// Per task: a small valid config, and a 2-step run of it (rna-vae: a checkpoint per step).
    var configs = [String: String](), runs = [String: String]()
    /// The leaf keys of each task's effective config ("train.steps", "model.hidden").
    var effectiveKeys = [String: [String]]()
    /// A regular file, an empty directory, a path that does not exist.
    let aFile: String, aDirectory: String, missing: String
    /// A folder with one sub-folder of pictures (P1/ihc.png).
    let pictures: String
    /// A slide mapping for tile-slides (`--slides` is the fixture data folder).
    let mapping: String
    private var counter = 0
    private let lock = NSLock()

    static let taskModels = ["cancer-type": "{hidden: [16], dropout: 0.1}", "rna-vae": "{hidden: [16], latent: 4}",
                             "survival-cox": "{hidden: [16], dropout: 0.1}", "tile-classifier": "{depth: 2, width: 4}",
                             "multimodal-cancer-type": "{depth: 2, width: 4, attention: 4, hidden: [8], features: 4, max_tiles: 2}",
                             "tile-fractions": "{depth: 2, width: 4}",
                             "rna-cdm-diffusion": "{image_size: 8, dim: 8, dim_mults: [1, 2], blocks_per_level: 1, attention_levels: [1], heads: 2, condition_dim: 8, timesteps: 20}"]
    /// Tasks whose corpus config trains on the tiled cohort (the other has no tiles).
    static let tiledTasks: Set = ["tile-classifier", "multimodal-cancer-type", "tile-fractions", "rna-cdm-diffusion"]
    /// Companions of the tasks that need them (a run name of `runs`, trained first).
    static let taskCompanions = ["rna-cdm-diffusion": "{rna_encoder: RUN(tiled-rna-vae)}"]

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("transcriptile-bad-input-\(getpid())")
        try? FileManager.default.removeItem(at: root)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        cohort = root.appendingPathComponent("cohort").path
        tiledCohort = root.appendingPathComponent("tiled-cohort").path
        aFile = root.appendingPathComponent("a-file.txt").path
        aDirectory = root.appendingPathComponent("an-empty-directory").path
        missing = root.appendingPathComponent("no-such-path").path
        pictures = root.appendingPathComponent("pictures").path
        mapping = root.appendingPathComponent("slides.tsv").path
        try "not a directory\n".write(toFile: aFile, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: aDirectory, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: pictures + "/P1", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: data + "/ihc.png", toPath: pictures + "/P1/ihc.png")
        try "slide\tpatient\tcancer_type\ncmu_small_region.svs\tCMU-1\tSKIN\n".write(toFile: mapping, atomically: true, encoding: .utf8)

        for (out, arguments) in [(cohort, ["--patients", "60", "--cancer-types", "3", "--genes", "64", "--tiles-per-patient", "0", "--seed", "1"]),
                                 (tiledCohort, ["--patients", "6", "--cancer-types", "2", "--genes", "16", "--tiles-per-patient", "2",
                                                "--tile-size", "16", "--seed", "2"])] {
            let result = try ProcessRunner.run(ProcessRunner.product("transcriptile"), ["data", "simulate", "--out", out] + arguments, timeout: 60)
            guard result.status == 0 else { throw FixtureError("data simulate failed\n" + result.output) }
        }
        // The companion a task's baseline needs (the tiled cohort's genes), then every task.
        for (task, model) in [("tiled-rna-vae", "rna-vae", "{hidden: [16], latent: 4}")].map({ ($0.0, "task: \($0.1)\nmodel: \($0.2)") })
            + Self.taskModels.sorted(by: { $0.key < $1.key }).map({ ($0.key, "task: \($0.key)\nmodel: \($0.value)") }) {
            let config = root.appendingPathComponent("\(task).yaml").path
            let tiled = Self.tiledTasks.contains(task) || task.hasPrefix("tiled-")
            let companions = Self.taskCompanions[task].map { line in
                "companions: " + line.replacingOccurrences(of: "RUN(tiled-rna-vae)", with: runs["tiled-rna-vae"] ?? "missing") + "\n"
            } ?? ""
            try """
                \(model)
                cohort: \(tiled ? tiledCohort : cohort)
                \(companions)train: {steps: 2, global_batch: \(tiled ? 4 : 8)}
                liveness: {timeout_s: 10}
                progress: {every_s: 1}
                """.write(toFile: config, atomically: true, encoding: .utf8)
            configs[task] = config
            let run = root.appendingPathComponent("run-\(task)").path
            let result = try ProcessRunner.run(
                ProcessRunner.repositoryRoot.appendingPathComponent("launch/train").path,
                [config, "--workers", "1", "--run-dir", run, "--set", "checkpoint.every_steps=1"],
                environment: ["TRANSCRIPTILE_BIN": ProcessRunner.productsFolder.path], timeout: 120)
            guard result.status == 0 else { throw FixtureError("the \(task) baseline run failed\n" + result.output) }
            runs[task] = run
            let yaml = try String(contentsOfFile: run + "/config.yaml", encoding: .utf8)
            effectiveKeys[task] = Self.leafKeys(yaml: yaml)
        }
    }

    struct FixtureError: Error, CustomStringConvertible { let description: String; init(_ d: String) { description = d } }

    /// A fresh path under the scratch folder (not created).
    func fresh(_ name: String) -> String {
        lock.withLock { counter += 1; return root.appendingPathComponent("\(name)-\(counter)").path }
    }

    /// A fresh directory holding a user's file `name` with `contents`.
    func directoryHolding(_ name: String, _ contents: String = "patient,prediction\nP1,0.5\n") throws -> String {
        let directory = fresh("users-dir")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try contents.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
        return directory
    }

    /// A message names `path` by its whole path or its last component.
    func named(_ path: String) -> [[String]] { [Self.pathNames(path)] }

    func file(_ name: String, _ contents: String) throws -> String {
        let path = fresh("file") + "-" + name
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A hostfile of one host with `slots` slots, and a profile holding `text` (for train's cases).
    func hostfile(slots: Int) -> String { (try? file("hosts", "localhost slots=\(slots)\n")) ?? missing }
    func profile(_ text: String) -> String { (try? file("profile.yaml", text)) ?? missing }

    /// The leaf keys of YAML as Yams prints the effective config (block style, two-space
    /// indents, sequences at the key's indent).
    static func leafKeys(yaml: String) -> [String] {
        let lines = yaml.split(separator: "\n").map(String.init).filter {
            let body = $0.trimmingCharacters(in: .whitespaces)
            return !body.isEmpty && !body.hasPrefix("#")
        }
        var stack = [(indent: Int, key: String)](), leaves = [String]()
        for (index, line) in lines.enumerated() {
            let indent = line.prefix { $0 == " " }.count
            let body = line.dropFirst(indent)
            guard !body.hasPrefix("-"), let colon = body.firstIndex(of: ":") else { continue }
            let key = String(body[..<colon])
            let rest = body[body.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            while let last = stack.last, last.indent >= indent { stack.removeLast() }
            if rest.isEmpty, index + 1 < lines.count {
                let next = lines[index + 1]
                let nextIndent = next.prefix { $0 == " " }.count
                if nextIndent > indent, !next.dropFirst(nextIndent).hasPrefix("-") {
                    stack.append((indent, key))
                    continue
                }
            }
            leaves.append((stack.map(\.key) + [key]).joined(separator: "."))
        }
        return leaves
    }

    /// The sections (mappings) of a task's effective config: "train", "train.split", "model".
    func sections(of task: String) -> [String] {
        let keys = effectiveKeys[task] ?? []
        var sections = [String]()
        for key in keys {
            var parts = key.split(separator: ".").map(String.init)
            parts.removeLast()
            while !parts.isEmpty {
                let section = parts.joined(separator: ".")
                if !sections.contains(section) { sections.append(section) }
                parts.removeLast()
            }
        }
        return sections.sorted()
    }

    // MARK: Config cases

    func trainCase(_ name: String, covers: [String], task: String, workers: Int = 1, sets: [String], status: Set<Int32> = [2],
                   names: [[String]], pretraining: Bool = true, runDirectory: Bool = true, unchanged: [String] = []) -> Case {
        let run = fresh("run")
        var arguments = [configs[task] ?? "missing-config-for-\(task)", "--workers", "\(workers)", "--resume", "none"]
        if runDirectory { arguments += ["--run-dir", run] }
        arguments += sets.flatMap { ["--set", $0] }
        return Case(name: name, covers: covers, program: .train, arguments: arguments, status: status, names: names,
                    absent: pretraining && runDirectory ? [run] : [], unchanged: unchanged, timeout: 120)
    }

    func configCase(key: BadInputCorpusTests.Key, task: String, value: String) -> Case {
        trainCase((key.task.map { "[\($0)] " } ?? "") + "\(key.name)=\(value)", covers: [key.id], task: task,
                  sets: ["\(key.name)=\(value)"], names: [BadInputCorpusTests.keyNames(key.name)])
    }

    /// Config-key cases that need real paths: `cohort` and `run_dir`.
    func pathKeyCases() throws -> [Case] {
        let summary = try directoryHolding("summary.json", "{\"mine\": true}\n")
        return [
            trainCase("cohort=<missing>", covers: ["cohort"], task: "rna-vae", sets: ["cohort=\(missing)"], names: named(missing)),
            trainCase("cohort=<a file>", covers: ["cohort"], task: "rna-vae", sets: ["cohort=\(aFile)"], names: named(aFile)),
            trainCase("cohort=<an empty directory>", covers: ["cohort"], task: "rna-vae", sets: ["cohort=\(aDirectory)"], names: named(aDirectory)),
            trainCase("train.init_from=<missing>", covers: ["train.init_from"], task: "cancer-type", sets: ["train.init_from=\(missing)"],
                      names: named(missing)),
            trainCase("train.init_from=<a file>", covers: ["train.init_from"], task: "cancer-type", sets: ["train.init_from=\(aFile)"],
                      names: named(aFile)),
            trainCase("train.init_from=<an empty directory>", covers: ["train.init_from"], task: "cancer-type", sets: ["train.init_from=\(aDirectory)"],
                      names: named(aDirectory)),
            trainCase("train.init_from=<a tile-classifier run>", covers: ["train.init_from"], task: "cancer-type",
                      sets: ["train.init_from=\(runs["tile-classifier"] ?? missing)"], names: [BadInputCorpusTests.keyNames("train.init_from")]),
            trainCase("companions.rna_encoder=<missing>", covers: ["companions.rna_encoder"], task: "survival-cox",
                      sets: ["companions.rna_encoder=\(missing)"], names: named(missing)),
            trainCase("companions.rna_encoder=<a cancer-type run>", covers: ["companions.rna_encoder"], task: "survival-cox",
                      sets: ["companions.rna_encoder=\(runs["cancer-type"] ?? missing)"], names: [BadInputCorpusTests.keyNames("companions.rna_encoder")]),
            trainCase("run_dir=<a file>", covers: ["run_dir"], task: "rna-vae", sets: ["run_dir=\(aFile)"], names: named(aFile),
                      runDirectory: false, unchanged: [aFile]),
            trainCase("run_dir=<a directory holding a user's summary.json>", covers: ["run_dir"], task: "rna-vae",
                      sets: ["run_dir=\(summary)"], names: named(summary), runDirectory: false, unchanged: [summary]),
        ]
    }

    // MARK: Command cases

    /// `arguments` with `option`'s value replaced by `value` (or the pair added).
    func setting(_ option: String, to value: String, in arguments: [String]) -> [String] {
        var arguments = arguments
        if let index = arguments.firstIndex(of: option) { arguments[index + 1] = value } else { arguments += [option, value] }
        return arguments
    }

    func cli(_ command: String, _ option: String?, _ arguments: [String], status: Set<Int32> = [2], names: [[String]]? = nil,
             unchanged: [String] = [], timeout: TimeInterval = 90, check: (@Sendable (ProcessRunner.Result) -> String?)? = nil) -> Case {
        let words = command.split(separator: " ").map(String.init)
        let shown = arguments.map(Case.quoted).joined(separator: " ")
        return Case(name: "\(command) \(shown)", covers: [command] + (option.map { ["\(command) \($0)"] } ?? []),
                    program: .transcriptile, arguments: words + arguments, status: status,
                    names: names ?? (option.map { [Self.optionNames($0, value: arguments.last ?? "")] } ?? []),
                    unchanged: unchanged, check: check, timeout: timeout)
    }

    /// The ways a message may name an option given `value`: "--kind", "kind" (four letters or
    /// more), "directory" for `<directory>`, or the value itself when it is a word of three letters
    /// or more (a column, an attribute, a path).
    static func optionNames(_ option: String, value: String) -> [String] {
        let bare = option.trimmingCharacters(in: CharacterSet(charactersIn: "<>-"))
        var names = [option.hasPrefix("<") ? bare : option]
        if bare.count >= 4, !names.contains(bare) { names.append(bare) }
        if value.count >= 3, Double(value) == nil { names += pathNames(value) }
        return names
    }

    /// A path, or its last component.
    static func pathNames(_ path: String) -> [String] {
        let last = (path as NSString).lastPathComponent
        return last != path && last.count >= 3 ? [path, last] : [path]
    }

    /// The degenerate values of a numeric option: each with `rest` (cheap settings), expecting exit 2.
    func numbers(_ command: String, _ option: String, _ values: [String], _ rest: [String] = []) -> [Case] {
        values.map { cli(command, option, rest + [option, $0]) }
    }

    /// A path option given a missing path, an empty string, and a file where a directory belongs
    /// (or a directory where a file belongs).
    func paths(_ command: String, _ option: String, directory: Bool, _ rest: [String] = []) -> [Case] {
        let wrongKind = directory ? aFile : aDirectory
        let place: (String) -> [String] = { option.hasPrefix("<") ? [$0] : [option, $0] }
        return [
            cli(command, option, rest + place(missing), names: named(missing)),
            cli(command, option, rest + place(""), names: [option.hasPrefix("<") ? [option.trimmingCharacters(in: CharacterSet(charactersIn: "<>")), "empty", "''"] : [option, "empty"]]),
            cli(command, option, rest + place(wrongKind), names: named(wrongKind)),
        ]
    }

    /// `sample`: every option's degenerate values, against the baseline diffusion run.
    func sampleCases() -> [Case] {
        let base = runs["rna-cdm-diffusion"] ?? missing
        let patient = ["--cohort", tiledCohort, "--patient", "SIM-000000"]
        let rest = ["--base", base] + patient + ["--steps", "2", "--n", "1", "--out", fresh("samples")]
        var cases = paths("sample", "--base", directory: true, patient + ["--out", fresh("samples")])
        cases.append(cli("sample", "--base", ["--base", runs["rna-vae"] ?? missing] + patient + ["--out", fresh("samples")], names: [["rna-cdm-diffusion"]]))
        cases += paths("sample", "--sr", directory: true, ["--base", base] + patient + ["--out", fresh("samples")])
        cases.append(cli("sample", "--sr", ["--base", base, "--sr", base] + patient + ["--out", fresh("samples")], names: [["--sr"], ["super_resolution"]]))
        cases += paths("sample", "--rna", directory: false, ["--base", base, "--out", fresh("samples")])
        let partial = (try? file("profile.tsv", "gene\tP1\nSIM0\t5\n")) ?? missing, negative = (try? file("profile.tsv", "gene\tP1\n" + (0..<16).map { "SIM\($0)\t-1\n" }.joined())) ?? missing
        cases.append(cli("sample", "--rna", ["--base", base, "--rna", partial, "--out", fresh("samples")], names: [["lacks 15 of the 16 genes"]]))
        cases.append(cli("sample", "--rna", ["--base", base, "--rna", negative, "--out", fresh("samples")], names: [["negative"]]))
        cases.append(cli("sample", "--rna", ["--base", base, "--rna", partial] + patient + ["--out", fresh("samples")], names: [["--rna"]]))
        cases += paths("sample", "--cohort", directory: true, ["--base", base, "--patient", "SIM-000000", "--out", fresh("samples")])
        cases.append(cli("sample", "--patient", ["--base", base, "--cohort", tiledCohort, "--patient", "nobody", "--out", fresh("samples")]))
        cases.append(cli("sample", "--patient", ["--base", base, "--cohort", tiledCohort, "--patient", ",", "--out", fresh("samples")], names: [["--patient"]]))
        cases += numbers("sample", "--n", ["0", "-1", "10001", "abc"], rest)
        cases += numbers("sample", "--guidance", ["-1", "nan", "101", "abc"], rest)
        cases += numbers("sample", "--steps", ["0", "-1", "10001"], rest)
        cases += numbers("sample", "--seed", ["-1", "abc"], rest)
        cases += numbers("sample", "--batch", ["0", "1025"], rest)
        cases.append(cli("sample", "--sampler", rest + ["--sampler", "euler"]))
        cases.append(cli("sample", "--weights", rest + ["--weights", "bogus"]))
        cases.append(cli("sample", "--out", ["--base", base] + patient + ["--out", aFile], names: named(aFile), unchanged: [aFile]))
        cases.append(cli("sample", "--out", ["--base", base] + patient + ["--out", ""]))
        if let users = try? directoryHolding("results.csv") {
            cases.append(cli("sample", "--out", ["--base", base] + patient + ["--out", users], names: [["not empty"]], unchanged: [users + "/results.csv"]))
        }
        cases.append(cli("sample", nil, ["--base", base, "--out", fresh("samples")], names: [["--rna"]]))
        return cases
    }

    func commandCases() -> [Case] {
        var cases = [Case]()
        let run = runs["rna-vae"]!, checkpoint = runs["rna-vae"]! + "/checkpoints/step-00000002"

        // smoke (bad command lines are refused before MPI starts)
        cases += numbers("smoke", "--large", ["-1", "", "abc", "99999999999999999"])
        cases.append(cli("smoke", "--large", ["--large", "0"], status: [0, 2]))  // 0: the checks of lengths 0, 1, 1001 still run

        // bench allreduce: a valid command is cheap (64 KB, one batch of 1 ms).
        let allreduce = ["--max-bytes", "64K", "--repeats", "1", "--batch-seconds", "0.001"]
        cases += numbers("bench allreduce", "--min-bytes", ["0", "-1", "", "abc"], ["--max-bytes", "64K", "--repeats", "1"])
        cases += numbers("bench allreduce", "--max-bytes", ["0", "-1", "", "99999999999999999"], ["--repeats", "1"])
        cases += numbers("bench allreduce", "--type", ["no-such-type", ""], allreduce)
        cases += numbers("bench allreduce", "--op", ["no-such-op", ""], allreduce)
        cases += numbers("bench allreduce", "--repeats", ["0", "-1", ""], ["--max-bytes", "64K", "--batch-seconds", "0.001"])
        cases += numbers("bench allreduce", "--batch-seconds", ["0", "-1", "nan", "inf", ""], ["--max-bytes", "64K", "--repeats", "1"])
        cases += numbers("bench allreduce", "--algorithm", ["no-such-algorithm", ""], allreduce)
        cases += numbers("bench allreduce", "--bucket-mb", ["0", "-1", "nan", "inf", ""], allreduce + ["--algorithm", "mpi"])
        cases += numbers("bench allreduce", "--ranks-per-node", ["0", "-1", ""], allreduce + ["--algorithm", "mpi"])
        var json = cli("bench allreduce", "--algorithm", [], status: [0]) { result in
            let lines = result.stdout.split(separator: "\n")
            if lines.isEmpty { return "no JSON lines on stdout" }
            for line in lines where (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] == nil {
                return "stdout line is not a JSON object: \(line.prefix(200))"
            }
            return nil
        }
        json.program = .mpirun(2)
        json.arguments = ["bench", "allreduce", "--algorithm", "mpi", "--json", "--max-bytes", "64K", "--repeats", "1"]
        json.name = "bench allreduce --algorithm mpi --json on 2 ranks"
        cases.append(json)

        // bench core: a valid command runs one small case once.
        let core = ["--filter", "adamw", "--repeats", "1", "--layers-only"]
        cases += numbers("bench core", "--threads", ["0", "-1", "", "99999999999999999"], core)
        cases += numbers("bench core", "--repeats", ["0", "-1", ""], ["--filter", "adamw", "--layers-only"])
        cases.append(cli("bench core", "--filter", ["--repeats", "1", "--layers-only", "--filter", "no-such-case"], status: [0]))  // a filter that matches nothing measures nothing
        cases.append(cli("bench core", "--filter", ["--repeats", "1", "--layers-only", "--filter", ""], status: [0, 2]))  // empty: every case

        // bench io
        let io = ["--reads", "10", "--repeats", "1"]
        cases += paths("bench io", "--cohort", directory: true, io)
        cases.append(cli("bench io", "--cohort", io + ["--cohort", aDirectory], names: named(aDirectory)))
        cases += numbers("bench io", "--reads", ["0", "-1", ""], ["--repeats", "1"])
        cases += numbers("bench io", "--repeats", ["0", "-1", ""], ["--reads", "10"])

        // bench checkpoint
        cases += paths("bench checkpoint", "--dir", directory: true, ["--steps", "1", "--repeats", "1"])
        cases += numbers("bench checkpoint", "--steps", ["-1", ""], ["--repeats", "1"])
        cases += numbers("bench checkpoint", "--repeats", ["0", "-1", ""], ["--steps", "1"])

        // bench vae
        cases += numbers("bench vae", "--genes", ["0", "-1", "", "99999999999"], ["--batch", "4", "--repeats", "1"])
        cases += numbers("bench vae", "--batch", ["0", "-1", "1", ""], ["--genes", "256", "--repeats", "1"])
        cases += numbers("bench vae", "--repeats", ["0", "-1", ""], ["--genes", "64", "--batch", "4"])

        // data simulate: a valid command writes a tiny cohort.
        func simulate(_ option: String, _ value: String) -> Case {
            cli("data simulate", option, setting(option, to: value,
                                                 in: ["--out", fresh("simulated"), "--patients", "4", "--genes", "8", "--tiles-per-patient", "1", "--tile-size", "8"]))
        }
        cases += [simulate("--out", ""), simulate("--out", aFile)]
        cases[cases.count - 1].names = [[aFile]]
        cases[cases.count - 1].unchanged = [aFile]
        cases += ["0", "-1", "", "99999999999999999"].map { simulate("--patients", $0) }
        cases += ["0", "-1", ""].map { simulate("--tile-size", $0) }
        cases += ["-1", ""].map { simulate("--seed", $0) }
        cases += ["0", "-1", "", "5"].map { simulate("--cancer-types", $0) }
        cases += ["0", "-1", ""].map { simulate("--genes", $0) }
        cases += ["-1", ""].map { simulate("--tiles-per-patient", $0) }
        cases += ["0", "-1", ""].map { simulate("--patients-per-shard", $0) }
        cases.append(cli("data simulate", nil, ["--out", fresh("simulated")], names: [["--patients"]]))

        // data validate, data inspect
        cases += paths("data validate", "<directory>", directory: true)
        cases.append(cli("data validate", "<directory>", [aDirectory], names: [["cohort.json"]]))
        cases += paths("data inspect", "<directory>", directory: true, ["--sheet", "none"])
        cases.append(cli("data inspect", "--sheet", [tiledCohort, "--sheet", ""], names: [["--sheet"]]))
        cases.append(cli("data inspect", "--sheet", [tiledCohort, "--sheet", missing + "/sheet.png"], names: named(missing)))
        cases.append(cli("data inspect", "--sheet", [tiledCohort, "--sheet", aDirectory], names: named(aDirectory)))
        cases += numbers("data inspect", "--tiles", ["0", "-1", "1025", ""], [tiledCohort, "--sheet", fresh("sheet") + ".png"])

        // data import-expression: a valid command imports the 20 Khan test tumours.
        let khan = ["--table", data + "/Khan_xtest.csv", "--labels", data + "/Khan_ytest.csv", "--kind", "scaled"]
        let star = ["--star", data + "/gdc", "--sample-sheet", data + "/gdc/gdc_sample_sheet.tsv"]
        let arff = ["--arff", data + "/breast_cancer_GSE7390-metastasis.arff", "--survival-time", "t.tdm", "--event", "e.tdm",
                    "--exclude", "age,size", "--kind", "log"]
        func expression(_ option: String, _ value: String, _ source: [String], names: [[String]]? = nil) -> Case {
            cli("data import-expression", option, ["--out", fresh("imported")] + source + [option, value], names: names)
        }
        cases += [expression("--out", "", khan)]
        cases.append(cli("data import-expression", "--out", khan + ["--out", aFile], names: named(aFile), unchanged: [aFile]))
        cases += ["0", "-1", ""].map { expression("--patients-per-shard", $0, khan) }
        cases += ["no-such-kind", ""].map { expression("--kind", $0, Array(khan.dropLast(2))) }
        cases += paths("data import-expression", "--star", directory: true, ["--out", fresh("imported"), "--sample-sheet", data + "/gdc/gdc_sample_sheet.tsv"])
        cases.append(expression("--star", aDirectory, ["--sample-sheet", data + "/gdc/gdc_sample_sheet.tsv"], names: named(aDirectory)))
        cases += paths("data import-expression", "--sample-sheet", directory: false, ["--out", fresh("imported"), "--star", data + "/gdc"])
        cases += paths("data import-expression", "--clinical", directory: false, ["--out", fresh("imported")] + star)
        cases += ["", "no_such_column"].map { expression("--type-column", $0, star + ["--clinical", data + "/gdc/clinical.tsv"]) }
        cases += paths("data import-expression", "--table", directory: false, ["--out", fresh("imported"), "--kind", "scaled"])
        cases += paths("data import-expression", "--labels", directory: false, ["--out", fresh("imported"), "--kind", "scaled", "--table", data + "/Khan_xtest.csv"])
        cases += paths("data import-expression", "--arff", directory: false, ["--out", fresh("imported"), "--kind", "log"])
        for option in ["--survival-time", "--event", "--type-column"] {
            var source = arff
            if let index = source.firstIndex(of: option) { source.removeSubrange(index...(index + 1)) }
            cases += ["", "no_such_attribute"].map { expression(option, $0, source) }
        }
        cases.append(expression("--exclude", "no_such_attribute", Array(arff.dropLast(4)) + ["--kind", "log"], names: [["no_such_attribute"]]))
        // Survival columns that hold no times or events, survival without its pair or on STAR, a type column beside labels.
        cases.append(expression("--survival-time", "er", Array(arff.dropFirst(4)) + ["--arff", arff[1]]))
        cases.append(expression("--event", "grade", ["--arff", arff[1], "--survival-time", "t.tdm", "--kind", "log"]))
        cases.append(expression("--event", "e.tdm", ["--arff", arff[1], "--kind", "log"]))
        cases.append(expression("--survival-time", "t.tdm", star + ["--event", "e.tdm"]))
        cases.append(expression("--type-column", "V1", khan))
        cases += ["", "no_such_attribute", "grade", "X219340_s_at"].map { expression("--keep", $0, ["--arff", arff[1], "--kind", "log"]) }
        cases.append(expression("--cancer-type", "", Array(khan.prefix(2)) + ["--kind", "scaled"]))
        cases.append(cli("data import-expression", nil, ["--out", fresh("imported")], names: [["--star", "--table", "--arff"]]))

        // data import-h5ad: a valid command imports 700 cells (log-normalised raw.X).
        let h5ad = data + "/10x_pbmc68k_reduced.h5ad"
        cases += paths("data import-h5ad", "<file>", directory: false, ["--out", fresh("imported"), "--matrix", "raw", "--kind", "log"])
        cases.append(cli("data import-h5ad", "--out", [h5ad, "--matrix", "raw", "--kind", "log", "--out", ""]))
        cases.append(cli("data import-h5ad", "--out", [h5ad, "--matrix", "raw", "--kind", "log", "--out", aFile], names: named(aFile), unchanged: [aFile]))
        for (option, values) in [("--patients-per-shard", ["0", "-1", ""]), ("--matrix", ["no-such-matrix", ""]), ("--kind", ["no-such-kind", ""]),
                                 ("--type-column", ["", "no_such_column"]), ("--cancer-type", [""])] {
            cases += values.map { value in
                cli("data import-h5ad", option, setting(option, to: value, in: [h5ad, "--out", fresh("imported"), "--matrix", "raw", "--kind", "log"]))
            }
        }

        // data tile-slides: a valid command cuts 4 tiles of 64 px from one picture.
        let tiles = ["--png-folders", pictures, "--tile-size", "64", "--max-tiles", "4"]
        func tileSlides(_ option: String, _ value: String, names: [[String]]? = nil) -> Case {
            cli("data tile-slides", option, setting(option, to: value, in: ["--out", fresh("tiled")] + tiles), names: names)
        }
        cases += [tileSlides("--out", ""), tileSlides("--out", aFile, names: named(aFile))]
        cases += ["0", "-1", ""].map { tileSlides("--patients-per-shard", $0) }
        cases += paths("data tile-slides", "--png-folders", directory: true, ["--out", fresh("tiled"), "--tile-size", "64"])
        cases.append(tileSlides("--png-folders", aDirectory, names: named(aDirectory)))
        cases += paths("data tile-slides", "--mapping", directory: false, ["--out", fresh("tiled"), "--slides", data, "--tile-size", "64", "--magnification", "5"])
        cases += paths("data tile-slides", "--slides", directory: true, ["--out", fresh("tiled"), "--mapping", mapping, "--tile-size", "64", "--magnification", "5"])
        cases += paths("data tile-slides", "--rna", directory: true, ["--out", fresh("tiled")] + tiles)
        cases += ["0", "-1", "", "99999999999"].map { tileSlides("--tile-size", $0) }
        cases += ["0", "-1", "nan", ""].map { tileSlides("--magnification", $0) }
        cases += ["0", "-1", "nan", ""].map { tileSlides("--source-magnification", $0) }
        cases += ["-1", "1.5", "nan", ""].map { tileSlides("--min-tissue", $0) }
        cases += ["0", "-1", ""].map { tileSlides("--max-tiles", $0) }
        cases += ["-1", ""].map { tileSlides("--seed", $0) }
        cases.append(cli("data tile-slides", nil, ["--out", fresh("tiled")], names: [["--png-folders", "--mapping"]]))

        // data import-spatial: a valid command imports one section (36 spots).
        let spatial = data + "/spatial"
        let section = ["--patient", "S1", "--counts", spatial + "/section_ihc.tsv", "--spots", spatial + "/spots_section_ihc.csv",
                       "--image", spatial + "/section_ihc.jpg", "--window", "64", "--tile-size", "32"]
        func importSpatial(_ option: String, _ value: String, names: [[String]]? = nil) -> Case {
            cli("data import-spatial", option, setting(option, to: value, in: ["--out", fresh("spatial")] + section), names: names)
        }
        cases += [importSpatial("--out", ""), importSpatial("--out", aFile, names: named(aFile))]
        cases += ["0", "-1", ""].map { importSpatial("--patients-per-shard", $0) }
        cases.append(importSpatial("--patient", ""))
        for option in ["--counts", "--spots", "--image"] {
            cases += [importSpatial(option, missing, names: named(missing)), importSpatial(option, ""), importSpatial(option, aDirectory, names: named(aDirectory))]
        }
        cases.append(importSpatial("--image", spatial + "/spots_section_ihc.csv", names: [["spots_section_ihc.csv"]]))
        cases.append(importSpatial("--cancer-type", ""))
        cases += ["0", "-1", "", "99999999999"].map { importSpatial("--window", $0) }
        cases += ["0", "-1", "", "99999999999"].map { importSpatial("--tile-size", $0) }
        cases.append(cli("data import-spatial", "--patient", ["--out", fresh("spatial"), "--patient", "S2"] + section, names: [["--patient", "--counts"]]))

        // checkpoint list / verify / inspect / export
        cases += paths("checkpoint list", "<directory>", directory: true)
        cases.append(cli("checkpoint list", "<directory>", [aDirectory], names: named(aDirectory)))
        cases += paths("checkpoint verify", "<path>", directory: true)
        cases.append(cli("checkpoint verify", "<path>", [aDirectory], names: named(aDirectory)))
        cases += paths("checkpoint inspect", "<path>", directory: true)
        cases += numbers("checkpoint inspect", "--step", ["-1", "0", "999", "", "99999999999999999999"], [run])
        cases += paths("checkpoint export", "<path>", directory: true, ["--out", fresh("weights") + ".safetensors"])
        cases.append(cli("checkpoint export", "--out", [checkpoint, "--out", ""]))
        cases.append(cli("checkpoint export", "--out", [checkpoint, "--out", aDirectory], names: named(aDirectory)))
        cases.append(cli("checkpoint export", "--out", [checkpoint, "--out", missing + "/weights.safetensors"], names: named(missing)))
        cases.append(cli("checkpoint export", "--out", [checkpoint, "--out", fresh("weights") + ".txt"], names: [[".txt", "--format"]]))
        cases += ["no-such-format", ""].map { cli("checkpoint export", "--format", [checkpoint, "--out", fresh("weights") + ".safetensors", "--format", $0]) }
        cases += numbers("checkpoint export", "--step", ["-1", "999", ""], [run, "--out", fresh("weights") + ".safetensors"])
        cases.append(cli("checkpoint export", "--step", [checkpoint, "--step", "1", "--out", fresh("weights") + ".safetensors"], names: [["--step 1"], ["step 2"]]))
        cases.append(cli("checkpoint export", "--out", [checkpoint, "--out", fresh("weights") + ".pt"], names: [[".pt"], ["pickle"], [".safetensors"]]))
        cases.append(cli("checkpoint export", "--format", [checkpoint, "--out", fresh("weights") + ".pth", "--format", "safetensors"], names: [["pickle"]]))
        cases.append(cli("checkpoint export", "--format", [checkpoint, "--out", fresh("weights") + ".safetensors", "--format", "bundle"], names: [["--format bundle"]]))
        cases.append(cli("checkpoint export", "--out", [checkpoint, "--out", aDirectory, "--overwrite"], names: [["not a model bundle"]], unchanged: [aDirectory]))

        // evaluate, encode (a trained rna-vae run)
        cases += paths("evaluate", "--checkpoint", directory: true, ["--out", fresh("evaluation")])
        cases.append(cli("evaluate", "--checkpoint", ["--checkpoint", aDirectory, "--out", fresh("evaluation")], names: named(aDirectory)))
        cases.append(cli("evaluate", nil, ["--out", fresh("evaluation")], names: [["--checkpoint"]]))
        cases += numbers("evaluate", "--step", ["-1", "999", ""], ["--checkpoint", run, "--out", fresh("evaluation")])
        cases += paths("evaluate", "--cohort", directory: true, ["--checkpoint", run, "--out", fresh("evaluation")])
        cases.append(cli("evaluate", "--cohort", ["--checkpoint", run, "--cohort", aDirectory, "--out", fresh("evaluation")], names: named(aDirectory)))
        cases.append(cli("evaluate", "--out", ["--checkpoint", run, "--out", aFile], names: named(aFile), unchanged: [aFile]))
        cases.append(cli("evaluate", "--out", ["--checkpoint", run, "--out", ""]))
        cases += paths("encode", "--checkpoint", directory: true, ["--out", fresh("latents") + ".h5"])
        cases += numbers("encode", "--step", ["-1", "999", ""], ["--checkpoint", run, "--out", fresh("latents") + ".h5"])
        cases += paths("encode", "--cohort", directory: true, ["--checkpoint", run, "--out", fresh("latents") + ".h5"])
        cases += ["no-such-split", ""].map { cli("encode", "--split", ["--checkpoint", run, "--out", fresh("latents") + ".h5", "--split", $0]) }
        cases.append(cli("encode", "--split", ["--checkpoint", run, "--cohort", cohort, "--split", "test", "--out", fresh("latents") + ".h5"]))
        cases.append(cli("encode", "--out", ["--checkpoint", run, "--out", ""]))
        cases.append(cli("encode", "--out", ["--checkpoint", run, "--out", aDirectory], names: named(aDirectory)))
        cases.append(cli("encode", "--out", ["--checkpoint", run, "--out", missing + "/latents.h5"], names: named(missing)))
        cases.append(cli("encode", nil, ["--checkpoint", run], names: [["--out"]]))
        cases += sampleCases()
        for (command, out) in [("evaluate", fresh("evaluation")), ("encode", fresh("latents") + ".h5")] {
            cases += ["bogus", "", "EMA"].map { cli(command, "--weights", ["--checkpoint", run, "--out", out, "--weights", $0], names: [["--weights"]]) }
            // The fixture's run kept no moving average.
            cases.append(cli(command, "--weights", ["--checkpoint", run, "--out", out, "--weights", "ema"], names: [["--weights ema"]]))
        }

        cases += trainCommandCases()
        return cases
    }

    /// The options of launch/train, which are transcriptile train's (it runs it): each case
    /// counts for both.
    func trainCommandCases() -> [Case] {
        let config = configs["rna-vae"]!
        func train(_ option: String?, _ arguments: [String], status: Set<Int32> = [2], names: [[String]]) -> Case {
            let covers = ["launch/train", "train"] + (option.map { ["launch/train \($0)", "train \($0)"] } ?? ["train <config>"])
            return Case(name: "launch/train " + arguments.map(Case.quoted).joined(separator: " "), covers: covers,
                        program: .train, arguments: arguments, status: status, names: names, timeout: 120)
        }
        var cases = [train(nil, [], names: [["--workers", "RUN.yaml", "usage"]]),
                     train(nil, [missing, "--workers", "1"], names: named(missing)),
                     train(nil, [aDirectory, "--workers", "1"], names: named(aDirectory)),
                     train(nil, ["", "--workers", "1"], names: [["config"]])]
        let base = { [config, "--run-dir", self.fresh("run"), "--resume", "none"] }
        cases += ["0", "-1", "abc", ""].map { train("--workers", base() + ["--workers", $0], names: [["--workers"]]) }
        cases.append(train("--workers", base(), names: [["--workers"]]))
        cases.append(train("--run-dir", [config, "--workers", "1", "--run-dir", ""], names: [["--run-dir"]]))
        cases.append(train("--resume", [config, "--workers", "1", "--run-dir", fresh("run"), "--resume", ""], names: [["--resume"]]))
        cases.append(train("--resume", [config, "--workers", "1", "--run-dir", fresh("run"), "--resume", missing], names: named(missing)))
        cases.append(train("--resume", [config, "--workers", "1", "--run-dir", fresh("run"), "--resume", aFile], names: named(aFile)))
        cases.append(train("--resume", [config, "--workers", "1", "--run-dir", fresh("run"), "--resume", aDirectory], names: named(aDirectory)))
        for (option, values) in [("--profile", [missing, "", aDirectory]), ("--hostfile", [missing, "", aDirectory])] {
            cases += values.map { train(option, base() + ["--workers", "1", option, $0], names: [[$0.isEmpty ? option : $0]]) }
        }
        cases.append(train("--profile", base() + ["--workers", "1", "--profile", aFile], names: [[aFile, "profile"]]))
        cases += ["noequals", "=5", "", "train..steps=5", "train.steps.x=5", "train.steps"].map {
            train("--set", base() + ["--workers", "1", "--set", $0], names: [["--set", $0]])
        }
        cases.append(train("--mpi-arg", base() + ["--workers", "1", "--mpi-arg", "--no-such-mpirun-option"], status: [1, 2],
                           names: [["--no-such-mpirun-option"]]))
        cases.append(train("--mpi-arg", base() + ["--workers", "1", "--mpi-arg", ""], names: [["--mpi-arg"]]))
        cases.append(train("--dry-run", base() + ["--workers", "0", "--dry-run"], names: [["--workers"]]))
        cases.append(train("--hostfile", base() + ["--workers", "4", "--hostfile", hostfile(slots: 4)], names: [["slots", "--workers"]]))
        cases.append(train("--profile", base() + ["--workers", "1", "--profile", profile("map-by: core\n")], names: [["map-by"]]))
        cases.append(train("--profile", base() + ["--workers", "1", "--profile", profile("threads_per_rank: 0\n")], names: [["threads_per_rank"]]))
        cases.append(Case(name: "transcriptile train without --workers", covers: ["train"], arguments: ["train", config],
                          names: [["--workers"]]))
        return cases
    }

    // MARK: File cases

    func fileCases() throws -> [Case] {
        var cases = [Case]()
        let config = configs["rna-vae"]!
        func train(_ name: String, _ arguments: [String], status: Set<Int32> = [2], names: [[String]], absent: [String] = [],
                   unchanged: [String] = []) -> Case {
            Case(name: name, covers: ["launch/train"], program: .train, arguments: arguments, status: status, names: names,
                 absent: absent, unchanged: unchanged, timeout: 120)
        }

        // Run directories
        let runFile = try file("run-dir.txt", "my notes\n")
        cases.append(train("--run-dir is a file", [config, "--workers", "1", "--run-dir", runFile], names: named(runFile), unchanged: [runFile]))
        let summary = try directoryHolding("summary.json", "{\"mine\": true}\n")
        cases.append(train("--run-dir holds a user's summary.json", [config, "--workers", "1", "--run-dir", summary],
                           names: named(summary), unchanged: [summary]))
        let inside = try file("parent.txt", "a file\n") + "/run"
        cases.append(train("--run-dir below a file", [config, "--workers", "1", "--run-dir", inside], names: [[inside, String(inside.dropLast(4))]]))

        // Config files
        let run = { self.fresh("run") }
        func configFile(_ name: String, _ text: String, names: [[String]]) throws -> Case {
            let path = try file(name, text)
            let directory = run()
            return train("config: \(name)", [path, "--workers", "1", "--run-dir", directory], names: names, absent: [directory])
        }
        cases.append(try configFile("empty.yaml", "", names: [["cohort"]]))
        cases.append(try configFile("not-yaml.yaml", "train: [1, 2\n  steps: {\n", names: [["not-yaml.yaml"]]))
        cases.append(try configFile("list.yaml", "- 1\n- 2\n", names: [["list.yaml"]]))
        cases.append(try configFile("scalar.yaml", "hello\n", names: [["scalar.yaml"]]))
        cases.append(try configFile("unknown-key.yaml", "task: rna-vae\ncohort: \(cohort)\ntrian: {steps: 2}\n", names: [["unknown-key.yaml:3", "trian"]]))
        cases.append(try configFile("duplicate-key.yaml", "task: rna-vae\ncohort: \(cohort)\ntrain: {steps: 2}\ntrain: {steps: 3}\n",
                                    names: [["train"]]))
        cases.append(try configFile("relative-cohort.yaml", "task: rna-vae\ncohort: no-such-cohort\ntrain: {steps: 2}\n", names: [["no-such-cohort"]]))
        cases.append(try configFile("tab-indented.yaml", "task: rna-vae\ntrain:\n\tsteps: 2\n", names: [["tab-indented.yaml"]]))
        let binary = fresh("binary") + ".yaml"
        try FileManager.default.copyItem(atPath: data + "/ihc.png", toPath: binary)
        let binaryRun = run()
        cases.append(train("config: a PNG", [binary, "--workers", "1", "--run-dir", binaryRun], names: named(binary), absent: [binaryRun]))

        // Output directories that hold a user's files
        let h5ad = data + "/10x_pbmc68k_reduced.h5ad"
        let results = try directoryHolding("results.csv")
        cases.append(cli("data import-h5ad", "--out", [h5ad, "--matrix", "raw", "--kind", "log", "--out", results], names: named(results),
                         unchanged: [results]))
        let regular = try file("out.txt", "mine\n")
        cases.append(cli("data import-h5ad", "--out", [h5ad, "--matrix", "raw", "--kind", "log", "--out", regular], names: named(regular),
                         unchanged: [regular]))
        let results2 = try directoryHolding("results.csv")
        cases.append(cli("data simulate", "--out", ["--out", results2, "--patients", "4", "--genes", "8"], names: named(results2), unchanged: [results2]))
        let results3 = try directoryHolding("results.csv")
        cases.append(cli("data import-expression", "--out", ["--out", results3, "--table", data + "/Khan_xtest.csv", "--kind", "scaled"],
                         names: named(results3), unchanged: [results3]))
        let results4 = try directoryHolding("results.csv")
        cases.append(cli("data tile-slides", "--out", ["--out", results4, "--png-folders", pictures, "--tile-size", "64"], names: named(results4),
                         unchanged: [results4]))
        let results5 = try directoryHolding("results.csv")
        cases.append(cli("evaluate", "--out", ["--checkpoint", runs["rna-vae"]!, "--out", results5], status: [0, 2], unchanged: [results5 + "/results.csv"]))

        // Picture folders and slide mappings
        cases.append(cli("data tile-slides", "--png-folders", ["--png-folders", "/nonexistent", "--out", fresh("tiled")], names: [["/nonexistent"]]))
        let flat = fresh("flat-pictures")
        try FileManager.default.createDirectory(atPath: flat, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: data + "/ihc.png", toPath: flat + "/ihc.png")
        cases.append(cli("data tile-slides", "--png-folders", ["--png-folders", flat, "--out", fresh("tiled"), "--tile-size", "64"], names: named(flat)))
        let corrupt = fresh("corrupt-pictures")
        try FileManager.default.createDirectory(atPath: corrupt + "/P1", withIntermediateDirectories: true)
        try "this is not a PNG".write(toFile: corrupt + "/P1/broken.png", atomically: true, encoding: .utf8)
        cases.append(cli("data tile-slides", "--png-folders", ["--png-folders", corrupt, "--out", fresh("tiled"), "--tile-size", "64"], names: [["broken.png"]]))
        let missingSlide = try file("slides.tsv", "slide\tpatient\nno-such-slide.svs\tP1\n")
        cases.append(cli("data tile-slides", "--mapping", ["--mapping", missingSlide, "--slides", data, "--out", fresh("tiled")], names: [["no-such-slide.svs"]]))
        let badColumns = try file("slides.tsv", "file\tcase\ncmu_small_region.svs\tP1\n")
        cases.append(cli("data tile-slides", "--mapping", ["--mapping", badColumns, "--slides", data, "--out", fresh("tiled")], names: named(badColumns)))
        let notSlide = try file("slides.tsv", "slide\tpatient\nKhan_ytest.csv\tP1\n")
        cases.append(cli("data tile-slides", "--mapping", ["--mapping", notSlide, "--slides", data, "--out", fresh("tiled")], names: [["Khan_ytest.csv"]]))

        // Expression tables
        func table(_ name: String, _ text: String, labels: String? = nil, names: [[String]]) throws -> Case {
            let path = try file(name, text)
            var arguments = ["--out", fresh("imported"), "--kind", "scaled", "--table", path]
            if let labels { arguments += ["--labels", try file("labels.csv", labels)] }
            return cli("data import-expression", "--table", arguments, names: names)
        }
        cases.append(try table("duplicate-patients.csv", "id,g1,g2,g3\nP1,1,2,3\nP2,4,5,6\nP1,7,8,9\n", names: [["P1"]]))
        cases.append(try table("duplicate-genes.csv", "id,g1,g2,g1\nP1,1,2,3\nP2,4,5,6\n", names: [["g1"]]))
        cases.append(try table("empty.csv", "", names: [["empty.csv"]]))
        cases.append(try table("header-only.csv", "id,g1,g2\n", names: [["header-only.csv"]]))
        cases.append(try table("not-a-number.csv", "id,g1,g2\nP1,1,2\nP2,4,abc\n", names: [["not-a-number.csv"], ["abc", "row 2", ":3"]]))
        cases.append(try table("nan.csv", "id,g1,g2\nP1,1,2\nP2,4,NaN\n", names: [["nan.csv"]]))
        cases.append(try table("ragged.csv", "id,g1,g2\nP1,1,2\nP2,4\n", names: [["ragged.csv"]]))
        cases.append(try table("no-genes.csv", "id\nP1\nP2\n", names: [["no-genes.csv"]]))
        cases.append(try table("labels-short.csv", "id,g1,g2\nP1,1,2\nP2,4,5\nP3,7,8\n", labels: "\"x\"\nA\nB\n", names: [["labels.csv"]]))
        cases.append(try table("labels-empty.csv", "id,g1,g2\nP1,1,2\nP2,4,5\n", labels: "", names: [["labels.csv"]]))
        let emptyARFF = try file("empty.arff", "")
        cases.append(cli("data import-expression", "--arff", ["--out", fresh("imported"), "--arff", emptyARFF, "--kind", "log"], names: named(emptyARFF)))
        let noDataARFF = try file("no-data.arff", "@relation r\n@attribute g1 numeric\n@data\n")
        cases.append(cli("data import-expression", "--arff", ["--out", fresh("imported"), "--arff", noDataARFF, "--kind", "log"], names: named(noDataARFF)))
        let starFolder = fresh("star")
        try FileManager.default.createDirectory(atPath: starFolder, withIntermediateDirectories: true)
        try "hello\nworld\n".write(toFile: starFolder + "/garbage.tsv", atomically: true, encoding: .utf8)
        let sheet = try file("sheet.tsv", "File ID\tFile Name\tData Category\tData Type\tProject ID\tCase ID\tSample ID\tSample Type\n"
                              + "x\tgarbage.tsv\tT\tG\tP\tC1\tC1-01A\tPrimary Tumor\n")
        cases.append(cli("data import-expression", "--star", ["--out", fresh("imported"), "--star", starFolder, "--sample-sheet", sheet], names: [["garbage.tsv"]]))

        // Spatial sections
        let emptyCounts = try file("counts.tsv", "")
        let spatial = data + "/spatial"
        cases.append(cli("data import-spatial", "--counts", ["--out", fresh("spatial"), "--patient", "S1", "--counts", emptyCounts, "--spots",
                                                            spatial + "/spots_section_ihc.csv", "--image", spatial + "/section_ihc.jpg"], names: named(emptyCounts)))
        let garbageImage = try file("image.jpg", "not a JPEG")
        cases.append(cli("data import-spatial", "--image", ["--out", fresh("spatial"), "--patient", "S1", "--counts", spatial + "/section_ihc.tsv",
                                                           "--spots", spatial + "/spots_section_ihc.csv", "--image", garbageImage], names: named(garbageImage)))

        // Cohorts
        let garbageCohort = try directoryHolding("cohort.json", "{")
        cases.append(cli("data validate", "<directory>", [garbageCohort], names: [["cohort.json"]]))
        let shardless = fresh("shardless-cohort")
        try FileManager.default.copyItem(atPath: cohort, toPath: shardless)
        for name in try FileManager.default.contentsOfDirectory(atPath: shardless) where name.hasSuffix(".h5") {
            try FileManager.default.removeItem(atPath: shardless + "/" + name)
        }
        cases.append(cli("data validate", "<directory>", [shardless], names: [[".h5"]]))
        cases.append(cli("data inspect", "<directory>", [shardless, "--sheet", "none"], names: [[".h5"]]))
        let shardlessRun = fresh("run")
        cases.append(train("cohort without its shard", [config, "--workers", "1", "--run-dir", shardlessRun, "--set", "cohort=\(shardless)"],
                           names: [[".h5"]], absent: [shardlessRun]))
        // A cohort without tiles: HDF5's error stack leaked onto stderr in about half the runs, so three runs.
        for run in 1...3 {
            var tileless = cli("bench io", "--cohort", ["--cohort", cohort, "--reads", "10", "--repeats", "1"], status: [0, 2])
            tileless.name += " (run \(run) of 3)"
            cases.append(tileless)
        }
        cases.append(cli("evaluate", "--cohort", ["--checkpoint", runs["rna-vae"]!, "--cohort", tiledCohort, "--out", fresh("evaluation")],
                         names: [["gene"]]))
        cases.append(cli("encode", "--cohort", ["--checkpoint", runs["rna-vae"]!, "--cohort", tiledCohort, "--out", fresh("latents") + ".h5"],
                         names: [["gene"]]))
        cases.append(cli("encode", "--checkpoint", ["--checkpoint", runs["cancer-type"]!, "--out", fresh("latents") + ".h5"], names: [["rna-vae"]]))

        // Crafted checkpoint manifests
        let crafted: [(String, String, Int)] = [  // label, replacement of the n-th "count"/"offset", which occurrence
            ("arena count 1e15", "\"count\" : 1e15", 0), ("arena count 10^15", "\"count\" : 1000000000000000", 0),
            ("arena count 2^62", "\"count\" : 4611686018427387904", 0), ("arena count -1", "\"count\" : -1", 0),
            ("arena count 2^64", "\"count\" : 18446744073709551616", 0), ("frame count 2^62", "\"count\" : 4611686018427387904", 4),
            ("frame offset 2^62", "\"offset\" : 4611686018427387904", 0), ("frame bytes 2^62", "\"bytes\" : 4611686018427387904", 2),
        ]
        for (index, (label, replacement, occurrence)) in crafted.enumerated() {
            let copy = fresh("crafted-run")
            try FileManager.default.copyItem(atPath: runs["rna-vae"]!, toPath: copy)
            let step = copy + "/checkpoints/step-00000002", manifest = step + "/manifest.json"
            var text = try String(contentsOfFile: manifest, encoding: .utf8)
            let field = replacement.components(separatedBy: " : ")[0]
            var ranges = [Range<String.Index>](), from = text.startIndex
            while let range = text.range(of: field + #" : -?\d+"#, options: .regularExpression, range: from..<text.endIndex) {
                ranges.append(range)
                from = range.upperBound
            }
            guard ranges.indices.contains(occurrence) else { throw FixtureError("\(label): manifest.json has no \(field) #\(occurrence)\n\(text)") }
            text.replaceSubrange(ranges[occurrence], with: replacement)
            try text.write(toFile: manifest, atomically: true, encoding: .utf8)
            let names = [["manifest.json", "step-00000002", "shard-0000"]]
            func named(_ c: Case) -> Case { var c = c; c.name = "[\(label)] " + c.name; return c }
            cases.append(named(cli("checkpoint verify", "<path>", [step], names: names)))
            if index == 2 || index == 3 || index == 5 {
                cases.append(named(cli("checkpoint inspect", "<path>", [step], names: names)))
                cases.append(named(cli("checkpoint export", "<path>", [step, "--out", fresh("weights") + ".safetensors"], names: names)))
                cases.append(named(cli("evaluate", "--checkpoint", ["--checkpoint", step, "--out", fresh("evaluation")], names: names)))
                cases.append(named(cli("encode", "--checkpoint", ["--checkpoint", step, "--out", fresh("latents") + ".h5"], names: names)))
                let resumed = fresh("run")
                cases.append(named(train("launch/train --resume <crafted>", [config, "--workers", "1", "--run-dir", resumed, "--resume", step],
                                         names: names, absent: [resumed])))
            }
        }
        return cases
    }
}
