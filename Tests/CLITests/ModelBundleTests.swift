import Foundation
import TestSupport
import XCTest

/// `transcriptile checkpoint export` as a user runs it: model bundles of both tasks, read back by
/// Python with nothing but its standard library (the logic of Docs/Checkpoints.md's snippet) and
/// checked against what Transcriptile itself recorded; weights-only exports; which names,
/// steps and existing outputs are refused.
///
/// The cohort is imported from a table the test writes, so the genes, their order and the raw
/// values are known here: the normaliser is refitted from them, and the bundle's outputs on the
/// test split are compared with Transcriptile's own evaluation of those patients.
final class ModelBundleTests: XCTestCase {
    nonisolated(unsafe) private static var shared: BundleFixture?
    private let transcriptile = ProcessRunner.product("transcriptile")

    override func setUpWithError() throws {
        try XCTSkipIf(RankTests.isRankProcess, "launches its own processes")
    }

    override class func tearDown() {
        if let shared { try? FileManager.default.removeItem(at: shared.root) }
        shared = nil
    }

    private func fixture() throws -> BundleFixture {
        if let fixture = Self.shared { return fixture }
        let fixture = try BundleFixture()
        Self.shared = fixture
        return fixture
    }

    private func export(_ arguments: [String]) throws -> ProcessRunner.Result {
        try ProcessRunner.run(transcriptile, ["checkpoint", "export"] + arguments, timeout: 120)
    }

    // MARK: - Bundles read by Python

    func testVAEBundleLoadsInPlainPythonAndReproducesTheRunsEvaluation() throws {
        let f = try fixture()
        let run = f.runs["rna-vae"]!
        let bundle = f.fresh("vae.bundle")
        let result = try export([run, "--out", bundle])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: bundle).sorted(), ["README.md", "bundle.json", "config.yaml", "model.safetensors"])

        let evaluation = f.fresh("evaluation")
        let evaluated = try ProcessRunner.run(transcriptile, ["evaluate", "--checkpoint", run, "--out", evaluation], timeout: 120)
        XCTAssertEqual(evaluated.status, 0, evaluated.output)
        let figures = try XCTUnwrap(try f.json(evaluation + "/evaluation.json")["evaluation"] as? [String: Any])

        let python = try readInPython(f, task: "rna-vae", bundle: bundle)
        try checkCommon(f, task: "rna-vae", bundle: bundle, python: python)
        let mse = try XCTUnwrap(python["reconstruction_mse"] as? Double), expected = try XCTUnwrap(figures["reconstruction_mse"] as? Double)
        XCTAssertEqual(mse, expected, accuracy: 1e-4 * max(expected, 1e-3), "decode(μ) of the test split, in Python from the bundle, against `transcriptile evaluate`")
        let latent = try XCTUnwrap(python["mu_shape"] as? [Int])
        XCTAssertEqual(latent, [try f.testPatients(run).count, 3])
    }

    func testCancerTypeBundleTakesNamesFromTheCohortAndReproducesTheTestLoss() throws {
        let f = try fixture()
        let run = f.runs["cancer-type"]!
        let bundle = f.fresh("classifier.bundle")
        let result = try export([run, "--out", bundle])
        XCTAssertEqual(result.status, 0, result.output)

        let python = try readInPython(f, task: "cancer-type", bundle: bundle)
        try checkCommon(f, task: "cancer-type", bundle: bundle, python: python)
        let summary = try f.json(run + "/summary.json")
        let test = try XCTUnwrap(summary["evaluation"] as? [String: Any], "summary.json has no test evaluation")
        let loss = try XCTUnwrap(python["cross_entropy"] as? Double), expected = try XCTUnwrap(test["loss"] as? Double)
        XCTAssertEqual(loss, expected, accuracy: 1e-4 * max(expected, 1e-3), "the test split's mean cross-entropy, in Python from the bundle, against the run's")
        XCTAssertEqual(try XCTUnwrap(python["accuracy"] as? Double), try XCTUnwrap(test["accuracy"] as? Double), accuracy: 1e-9)
    }

    /// What both tasks' bundles must show: the header and weights as the run holds them, the
    /// genes and names of the cohort, the normaliser of the training split.
    private func checkCommon(_ f: BundleFixture, task: String, bundle: String, python: [String: Any]) throws {
        let run = f.runs[task]!
        let manifest = try f.json(run + "/checkpoints/step-00000003/manifest.json")
        let manifestTensors = try XCTUnwrap(manifest["tensors"] as? [[String: Any]])
        let json = try f.json(bundle + "/bundle.json")
        XCTAssertEqual(json["format"] as? String, "transcriptile-model-bundle")
        XCTAssertEqual(json["task"] as? String, task)
        XCTAssertEqual(json["step"] as? Int, 3)

        // The safetensors header, parsed by Python: every tensor of the checkpoint, F32, back to back.
        XCTAssertEqual(python["metadata"] as? [String: String],
                       ["format": "pt", "task": task, "step": "3", "source": "transcriptile checkpoint step-00000003"])
        XCTAssertEqual(python["contiguous"] as? Bool, true, "tensors must tile the data section")
        XCTAssertEqual(python["dtypes"] as? [String], ["F32"])
        let shapes = try XCTUnwrap(python["shapes"] as? [String: [Int]])
        XCTAssertEqual(shapes, Dictionary(uniqueKeysWithValues: manifestTensors.map { ($0["name"] as! String, $0["shape"] as! [Int]) }))

        // Every parameter's value: the SHA-256 the workers computed at the end of training.
        let summary = try f.json(run + "/summary.json")
        let trained = try XCTUnwrap((summary["parameters"] as? [String: Any])?["sha256"] as? String)
        XCTAssertEqual(python["parameters_sha256"] as? String, trained, "the parameters as Python reads them, against the run's summary.json")
        XCTAssertEqual((json["provenance"] as? [String: Any])?["parameters_sha256"] as? String, trained)

        // Genes: the table's columns in its order; the names of the cancer types by code.
        let cohort = try f.json(f.cohort + "/cohort.json")
        XCTAssertEqual(python["genes"] as? [String], f.genes)
        XCTAssertEqual(python["genes_sha256"] as? String, cohort["genes_sha256"] as? String)
        XCTAssertEqual(json["cancer_types"] as? [String], f.types)
        XCTAssertEqual(json["cancer_types"] as? [String], cohort["cancer_types"] as? [String])
        let input = try XCTUnwrap(json["input"] as? [String: Any])
        XCTAssertEqual(input["expression_kind"] as? String, "counts")

        // The normaliser: exactly the run's, and what the table's training rows give.
        let normaliser = try XCTUnwrap(input["normaliser"] as? [String: Any])
        XCTAssertEqual(normaliser["log_nonzero"] as? Bool, true)
        let plan = try f.json(run + "/run_plan.json")
        let planned = try XCTUnwrap((plan["prepared"] as? [String: Any])?["normalizer"] as? [String: Any])
        for key in ["mean", "std"] {
            let ours = try XCTUnwrap(normaliser[key] as? [Double]).map(Float.init), theirs = try XCTUnwrap(planned[key] as? [Double]).map(Float.init)
            XCTAssertEqual(ours, theirs, "normaliser.\(key) against run_plan.json")
            let refit = try XCTUnwrap((python["refit"] as? [String: Any])?[key] as? [Double])
            XCTAssertEqual(refit.count, f.genes.count)
            for (g, (a, b)) in zip(ours, refit).enumerated() {
                XCTAssertEqual(Double(a), b, accuracy: 1e-5 * max(1, abs(b)), "normaliser.\(key) of \(f.genes[g]), refitted from the table's training rows")
            }
        }

        // README.md's Python is Docs/Checkpoints.md's.
        let readme = try String(contentsOfFile: bundle + "/README.md", encoding: .utf8)
        let docs = try String(contentsOf: ProcessRunner.repositoryRoot.appendingPathComponent("Docs/Checkpoints.md"), encoding: .utf8)
        let code = readme.components(separatedBy: "```python\n").dropFirst().first?.components(separatedBy: "```").first ?? ""
        XCTAssertFalse(code.isEmpty, readme)
        for line in code.split(separator: "\n") where !docs.contains(String(line)) {
            XCTFail("README.md's Python line is not in Docs/Checkpoints.md: \(line)")
        }
    }

    /// Runs `BundleFixture.reader` on the bundle and the run's test patients, written as a new
    /// table with the genes in another order and a column the model does not know.
    private func readInPython(_ f: BundleFixture, task: String, bundle: String) throws -> [String: Any] {
        let probe = try ProcessRunner.run("/usr/bin/env", ["python3", "-c", "import array, csv, hashlib, json, math, struct"], timeout: 30)
        try XCTSkipIf(probe.status != 0, "python3 with its standard library is not available here (\(probe.stderr.prefix(200))): the bundle is not read back")
        let run = f.runs[task]!
        let patients = try f.testPatients(run)
        XCTAssertFalse(patients.isEmpty)
        let shuffled = f.genes.reversed() + ["NOT_A_GENE"]
        var table = "sample," + shuffled.joined(separator: ",") + "\n"
        for p in patients {
            let byGene = Dictionary(uniqueKeysWithValues: zip(f.genes, f.values[p]))
            table += "P\(p)," + shuffled.map { byGene[$0].map { "\($0)" } ?? "7" }.joined(separator: ",") + "\n"
        }
        let newSamples = f.fresh("new_samples.csv")
        try table.write(toFile: newSamples, atomically: true, encoding: .utf8)
        let labels = patients.map { f.labels[$0] }.joined(separator: ",")
        let result = try ProcessRunner.run("/usr/bin/env", ["python3", "-c", BundleFixture.reader, bundle, newSamples, f.table, run + "/run_plan.json", labels],
                                           timeout: 120)
        XCTAssertEqual(result.status, 0, result.output)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], result.output)
    }

    // MARK: - Names, steps, existing outputs

    func testNamesSayTheFormatAndPickleNamesAreRefused() throws {
        let f = try fixture()
        let run = f.runs["rna-vae"]!
        for (arguments, words) in [
            (["--out", f.fresh("model") + ".pt"], ["pickle", ".safetensors", ".bundle"]),
            (["--out", f.fresh("model") + ".pth", "--format", "safetensors"], ["pickle", ".safetensors"]),
            (["--out", f.fresh("model") + ".ckpt"], ["pickle"]),
            (["--out", f.fresh("model") + ".bundle", "--format", "safetensors"], ["--format safetensors", ".safetensors"]),
            (["--out", f.fresh("model") + ".safetensors", "--format", "hdf5"], [".h5"]),
            (["--out", f.fresh("model") + ".txt"], [".txt", "--format"]),
        ] {
            let result = try export([run] + arguments)
            XCTAssertEqual(result.status, 2, result.output)
            for word in words { XCTAssertTrue(result.stderr.contains(word), "\(arguments): \(word)\n\(result.output)") }
            XCTAssertFalse(FileManager.default.fileExists(atPath: arguments[1]), "\(arguments[1]) was written")
        }

        // Weights alone: safetensors with the task and step; HDF5; each replaced only with --overwrite.
        let weights = f.fresh("model") + ".safetensors"
        XCTAssertEqual(try export([run, "--out", weights, "--format", "safetensors"]).status, 0)
        let data = try Data(contentsOf: URL(fileURLWithPath: weights))
        let length = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian)
        let header = try XCTUnwrap(JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + length))) as? [String: Any])
        XCTAssertEqual((header["__metadata__"] as? [String: String])?["task"], "rna-vae")
        XCTAssertEqual((header["__metadata__"] as? [String: String])?["step"], "3")
        let again = try export([run, "--out", weights])
        XCTAssertEqual(again.status, 2, again.output)
        XCTAssertTrue(again.stderr.contains("--overwrite"), again.output)
        XCTAssertEqual(try export([run, "--out", weights, "--overwrite"]).status, 0)
        let h5 = f.fresh("model") + ".h5"
        let hdf5 = try export([run, "--out", h5])
        XCTAssertEqual(hdf5.status, 0, hdf5.output)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: h5)).prefix(4), Data([0x89, 0x48, 0x44, 0x46]), "HDF5 signature")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: f.root.path).filter { $0.hasPrefix(".") }, [], "no temporary file left behind")
    }

    func testStepIsHonouredForARunAndRefusedWhenTheDirectoryNamesAnother() throws {
        let f = try fixture()
        let run = f.runs["rna-vae"]!
        let bundle = f.fresh("step2.bundle")
        XCTAssertEqual(try export([run, "--step", "2", "--out", bundle]).status, 0)
        XCTAssertEqual(try f.json(bundle + "/bundle.json")["step"] as? Int, 2)

        let stepDirectory = run + "/checkpoints/step-00000003"
        let refused = try export([stepDirectory, "--step", "2", "--out", f.fresh("other.bundle")])
        XCTAssertEqual(refused.status, 2, refused.output)
        for word in ["--step 2", "step 3", run] { XCTAssertTrue(refused.stderr.contains(word), "\(word)\n\(refused.output)") }
        let same = f.fresh("same.bundle")
        XCTAssertEqual(try export([stepDirectory, "--step", "3", "--out", same]).status, 0)
        XCTAssertEqual(try f.json(same + "/bundle.json")["step"] as? Int, 3)
    }

    func testOnlyABundleIsReplacedAndOnlyWithOverwrite() throws {
        let f = try fixture()
        let run = f.runs["rna-vae"]!
        let bundle = f.fresh("replaced.bundle")
        XCTAssertEqual(try export([run, "--step", "2", "--out", bundle]).status, 0)
        let again = try export([run, "--out", bundle])
        XCTAssertEqual(again.status, 2, again.output)
        XCTAssertTrue(again.stderr.contains("--overwrite"), again.output)
        XCTAssertEqual(try export([run, "--out", bundle, "--overwrite"]).status, 0)
        XCTAssertEqual(try f.json(bundle + "/bundle.json")["step"] as? Int, 3)

        // A directory that is not a bundle is never written into, even with --overwrite.
        let users = f.fresh("users")
        try FileManager.default.createDirectory(atPath: users, withIntermediateDirectories: true)
        try "mine\n".write(toFile: users + "/notes.txt", atomically: true, encoding: .utf8)
        let empty = f.fresh("empty")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        for directory in [users, empty] {
            let result = try export([run, "--out", directory, "--overwrite"])
            XCTAssertEqual(result.status, 2, result.output)
            XCTAssertTrue(result.stderr.contains("not a model bundle"), result.output)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: users), ["notes.txt"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: empty), [])
    }

    func testCheckpointOutsideItsRunExportsWeightsButNoBundle() throws {
        let f = try fixture()
        let loose = f.fresh("loose")
        try FileManager.default.createDirectory(atPath: loose, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: f.runs["rna-vae"]! + "/checkpoints/step-00000003", toPath: loose + "/step-00000003")
        let refused = try export([loose + "/step-00000003", "--out", f.fresh("loose.bundle")])
        XCTAssertEqual(refused.status, 2, refused.output)
        XCTAssertTrue(refused.stderr.contains("run_plan.json") && refused.stderr.contains(".safetensors"), refused.output)
        XCTAssertEqual(try export([loose + "/step-00000003", "--out", f.fresh("loose") + ".safetensors"]).status, 0)
    }
}

// MARK: - The fixture: a cohort imported from a table, a 3-step run of each task

private final class BundleFixture: @unchecked Sendable {
    let root: URL
    /// Deliberately not in alphabetical order: the model's input order is the table's.
    let genes = ["ZNF7", "ACTB", "TP53", "GAPDH", "MYC", "EGFR", "CD3E", "KRT5", "ESR1", "PTPRC", "COL1A1", "VIM", "ALB", "SFTPC", "PAX8", "AR"]
    /// In order of first appearance in the labels: the cohort's codes 0, 1, 2.
    let types = ["LUAD", "BRCA", "KIRC"]
    /// Per patient: raw counts (about one in six zero) and the cancer type.
    let values: [[Int]], labels: [String]
    let table: String, cohort: String
    var runs = [String: String]()
    private var counter = 0

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("transcriptile-bundle-\(getpid())")
        try? FileManager.default.removeItem(at: root)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(state >> 33)
        }
        var values = [[Int]](), labels = [String]()
        for p in 0..<60 {
            let type = p % 3
            labels.append(types[type])
            values.append(genes.indices.map { g in
                next() % 6 == 0 ? 0 : 3 + next() % 20 + ((g + 2 * type) % 4 == 0 ? 60 + next() % 40 : 0)
            })
        }
        (self.values, self.labels) = (values, labels)
        table = root.appendingPathComponent("values.csv").path
        let labelsFile = root.appendingPathComponent("labels.csv").path
        try ("sample," + genes.joined(separator: ",") + "\n" + values.enumerated().map { p, row in
            "P\(p)," + row.map(String.init).joined(separator: ",")
        }.joined(separator: "\n") + "\n").write(toFile: table, atomically: true, encoding: .utf8)
        try ("cancer_type\n" + labels.joined(separator: "\n") + "\n").write(toFile: labelsFile, atomically: true, encoding: .utf8)
        cohort = root.appendingPathComponent("cohort").path
        let imported = try ProcessRunner.run(ProcessRunner.product("transcriptile"),
                                             ["data", "import-expression", "--out", cohort, "--kind", "counts", "--table", table, "--labels", labelsFile], timeout: 60)
        guard imported.status == 0 else { throw FixtureError("data import-expression failed\n" + imported.output) }

        for (task, model) in ["rna-vae": "{hidden: [8], latent: 3}", "cancer-type": "{hidden: [8, 6], dropout: 0.1}"] {
            let config = root.appendingPathComponent("\(task).yaml").path
            try """
                task: \(task)
                cohort: \(cohort)
                model: \(model)
                train: {steps: 3, global_batch: 8, split: {train: 0.6, validation: 0.2}}
                evaluation: {every_steps: 0}
                checkpoint: {every_steps: 1, keep_last: 3}
                liveness: {timeout_s: 20}
                """.write(toFile: config, atomically: true, encoding: .utf8)
            let run = root.appendingPathComponent("run-\(task)").path
            let result = try ProcessRunner.run(ProcessRunner.repositoryRoot.appendingPathComponent("launch/train").path,
                                               [config, "--workers", "1", "--run-dir", run],
                                               environment: ["TRANSCRIPTILE_BIN": ProcessRunner.productsFolder.path], timeout: 180)
            guard result.status == 0 else { throw FixtureError("the \(task) run failed\n" + result.output) }
            runs[task] = run
        }
    }

    struct FixtureError: Error, CustomStringConvertible { let description: String; init(_ d: String) { description = d } }

    /// A fresh path under the fixture's folder (not created).
    func fresh(_ name: String) -> String {
        counter += 1
        return root.appendingPathComponent("\(counter)-\(name)").path
    }

    func json(_ path: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any], path)
    }

    /// The run's test split (patient indices: rows of the table).
    func testPatients(_ run: String) throws -> [Int] {
        try XCTUnwrap((try json(run + "/run_plan.json")["split"] as? [String: Any])?["test"] as? [Int])
    }

    /// Python, standard library only: Docs/Checkpoints.md's reading of a bundle with `struct`,
    /// `json` and `array` in place of safetensors and numpy. Arguments: the bundle, a new table,
    /// the cohort's own table, the run plan, the new table's labels (comma-separated). Prints
    /// what it read and computed as JSON.
    static let reader = #"""
        import array, csv, hashlib, json, math, struct, sys

        bundle_dir, new_samples, table, plan_path, labels = sys.argv[1:6]
        bundle = json.load(open(bundle_dir + "/bundle.json"))
        with open(bundle_dir + "/model.safetensors", "rb") as f:
            data = f.read()
        (length,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + length])
        metadata = header.pop("__metadata__")
        body = memoryview(data)[8 + length:]
        w, spans = {}, []
        for name, t in header.items():
            start, end = t["data_offsets"]
            values = array.array("f")
            values.frombytes(body[start:end])
            if sys.byteorder != "little":
                values.byteswap()
            w[name] = (t["shape"], values)
            spans.append((start, end))
        spans.sort()
        contiguous = spans[0][0] == 0 and spans[-1][1] == len(body) and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))

        sha = hashlib.sha256()
        for entry in sorted((e for e in bundle["weights"]["tensors"] if e["arena"] == "parameters"), key=lambda e: e["offset"]):
            sha.update(w[entry["name"]][1].tobytes())

        arch, genes, norm = bundle["architecture"], bundle["input"]["genes"], bundle["input"]["normaliser"]
        mean, std = norm["mean"], norm["std"]

        def normalise(row):
            if norm["log_nonzero"]:
                row = [math.log(v) if v > 0 else v for v in row]
            return [(v - m) / s for v, m, s in zip(row, mean, std)]

        # The new table, in the model's gene order.
        with open(new_samples, newline="") as f:
            rows = list(csv.reader(f))
        column = {name: i for i, name in enumerate(rows[0])}
        missing = [g for g in genes if g not in column]
        assert not missing, missing
        x = [normalise([float(r[column[g]]) for g in genes]) for r in rows[1:]]

        def vector(name): return list(w[name][1])
        def linear(h, name):
            (out, inp), weight = w[name + ".weight"]
            bias = vector(name + ".bias")
            return [[sum(weight[o * inp + i] * row[i] for i in range(inp)) + bias[o] for o in range(out)] for row in h]
        def columnwise(h, f): return [[f(v, j) for j, v in enumerate(row)] for row in h]

        result = {}
        if bundle["task"] == "rna-vae":
            def batch_norm(h, name):
                rm, rv, g, b = (vector(name + s) for s in (".running_mean", ".running_var", ".weight", ".bias"))
                return columnwise(h, lambda v, j: (v - rm[j]) / math.sqrt(rv[j] + arch["batch_norm_epsilon"]) * g[j] + b[j])
            def leaky(h): return columnwise(h, lambda v, j: v if v > 0 else arch["leaky_slope"] * v)
            h = x
            for i in range(len(arch["hidden"])):
                h = leaky(batch_norm(linear(h, f"encoder.{i}"), f"encoder.{i}.norm"))
            mu = linear(h, "encoder.mean")
            h = mu
            for i in range(len(arch["hidden"])):
                h = leaky(batch_norm(linear(h, f"decoder.{i}"), f"decoder.{i}.norm"))
            reconstruction = columnwise(linear(h, "decoder.output"), lambda v, j: math.tanh(v))
            squares = [(a - b) ** 2 for ra, rb in zip(reconstruction, x) for a, b in zip(ra, rb)]
            result["reconstruction_mse"] = sum(squares) / len(squares)
            result["mu_shape"] = [len(mu), len(mu[0])]
        else:
            def layer_norm(h, name):
                g, b = vector(name + ".weight"), vector(name + ".bias")
                out = []
                for row in h:
                    m = sum(row) / len(row)
                    v = sum((a - m) ** 2 for a in row) / len(row)
                    out.append([(a - m) / math.sqrt(v + arch["layer_norm_epsilon"]) * g[j] + b[j] for j, a in enumerate(row)])
                return out
            def gelu(h): return columnwise(h, lambda v, j: 0.5 * v * (1 + math.erf(v / math.sqrt(2))))
            h = x
            for i in range(len(arch["hidden"])):
                h = gelu(layer_norm(linear(h, f"hidden{i}"), f"norm{i}"))
            logits = linear(h, "output")
            codes = [bundle["cancer_types"].index(name) for name in labels.split(",")]
            losses, correct = [], 0
            for row, code in zip(logits, codes):
                top = max(row)
                losses.append(top + math.log(sum(math.exp(v - top) for v in row)) - row[code])
                correct += max(range(len(row)), key=lambda k: row[k]) == code
            result["cross_entropy"] = sum(losses) / len(losses)
            result["accuracy"] = correct / len(codes)

        # The normaliser refitted from the cohort's own table over the training split.
        with open(table, newline="") as f:
            rows = list(csv.reader(f))
        column = {name: i for i, name in enumerate(rows[0])}
        train = json.load(open(plan_path))["split"]["train"]
        refit = {"mean": [], "std": []}
        for g in genes:
            values = [float(rows[1 + p][column[g]]) for p in train]
            if norm["log_nonzero"]:
                values = [math.log(v) if v > 0 else v for v in values]
            m = sum(values) / len(values)
            v = max(0.0, sum(a * a for a in values) / len(values) - m * m)
            refit["mean"].append(m)
            refit["std"].append(math.sqrt(v) if v > 1e-12 else 1.0)

        result.update({
            "metadata": metadata, "contiguous": contiguous,
            "dtypes": sorted({t["dtype"] for t in header.values()}),
            "shapes": {name: shape for name, (shape, _) in w.items()},
            "parameters_sha256": sha.hexdigest(),
            "genes": genes, "genes_sha256": hashlib.sha256("\n".join(genes).encode()).hexdigest(),
            "refit": refit,
        })
        print(json.dumps(result))
        """#
}
