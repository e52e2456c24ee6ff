import Checkpoints
import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension ModelBundle {
    /// The program that writes a bundle, for its provenance.
    public struct Producer {
        public var version: String
        public var commit: String
        public init(version: String, commit: String) { (self.version, self.commit) = (version, commit) }
    }

    /// Why nothing may be written at `directory` (nil: it may): it exists and is not a bundle, or
    /// is one and `overwrite` is off. A bundle is a directory holding only bundle files, among
    /// them a `bundle.json` of this format; nothing else is ever replaced.
    public static func targetProblem(_ directory: URL, overwrite: Bool) -> String? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory) else { return nil }
        let path = directory.path
        guard isDirectory.boolValue else { return "\(path) is a file; a model bundle is a directory: give a path that does not exist yet (e.g. NAME.bundle)" }
        let entries = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
        if let foreign = entries.first(where: { !fileNames.contains($0) }) {
            return "\(path) exists and is not a model bundle (it holds '\(foreign)'); export replaces only a bundle: give a path that does not exist yet"
        }
        guard let existing = try? Data(contentsOf: directory.appendingPathComponent("bundle.json")),
              let json = try? JSONSerialization.jsonObject(with: existing) as? [String: Any], json["format"] as? String == format else {
            return "\(path) exists and is not a model bundle (\(entries.isEmpty ? "it is empty" : "no bundle.json of \(format)")); give a path that does not exist yet"
        }
        guard overwrite else {
            return "\(path) exists (a model bundle of \(json["task"] as? String ?? "?") at step \(json["step"] as? Int ?? -1)); pass --overwrite to replace it"
        }
        return nil
    }

    /// Writes the bundle into `directory`: assembled in a hidden directory beside it, each file
    /// flushed, then renamed into place (an existing bundle, allowed by `targetProblem`, is
    /// moved aside first and its files removed once the new one is in place).
    public func write(to directory: URL, overwrite: Bool, producer: Producer) throws {
        if let problem = Self.targetProblem(directory, overwrite: overwrite) { throw TrainingError.plan(problem) }
        let manager = FileManager.default
        let parent = directory.deletingLastPathComponent(), name = directory.lastPathComponent
        let staging = parent.appendingPathComponent(".\(name).\(UUID().uuidString).partial")
        guard mkdir(staging.path, 0o755) == 0 else {
            throw CheckpointError.io(path: staging.path, operation: "create the directory", reason: String(cString: strerror(errno)))
        }
        do {
            let weights = try SafeTensors.encode(tensors, metadata: metadata)
            try FileIO.writeAtomically(weights, to: staging.appendingPathComponent("model.safetensors"))
            let json = try JSONSerialization.data(withJSONObject: bundleJSON(weightsSHA256: Self.hex(SHA256.hash(data: weights)), producer: producer),
                                                  options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            try FileIO.writeAtomically(json + Data("\n".utf8), to: staging.appendingPathComponent("bundle.json"))
            try FileIO.writeAtomically(Data(config.utf8), to: staging.appendingPathComponent("config.yaml"))
            try FileIO.writeAtomically(Data(readme.utf8), to: staging.appendingPathComponent("README.md"))
        } catch {
            try? manager.removeItem(at: staging)
            throw error
        }
        var replaced: URL?
        if manager.fileExists(atPath: directory.path) {
            let aside = parent.appendingPathComponent(".\(name).\(UUID().uuidString).replaced")
            guard rename(directory.path, aside.path) == 0 else {
                let reason = String(cString: strerror(errno))
                try? manager.removeItem(at: staging)
                throw CheckpointError.io(path: directory.path, operation: "move the existing bundle aside", reason: reason)
            }
            replaced = aside
        }
        guard rename(staging.path, directory.path) == 0 else {
            let reason = String(cString: strerror(errno))
            if let replaced { _ = rename(replaced.path, directory.path) }
            try? manager.removeItem(at: staging)
            throw CheckpointError.io(path: directory.path, operation: "move the bundle into place", reason: reason)
        }
        try FileIO.syncDirectory(parent.path)
        if let replaced {  // only bundle files (checked by targetProblem), then the directory itself
            for file in Self.fileNames { try? manager.removeItem(at: replaced.appendingPathComponent(file)) }
            _ = rmdir(replaced.path)
        }
    }

    /// `bundle.json`.
    func bundleJSON(weightsSHA256: String, producer: Producer) -> [String: Any] {
        let n = normalizer
        var provenance = self.provenance
        provenance["weights_sha256"] = weightsSHA256
        provenance["exported_by"] = ["version": producer.version, "commit": producer.commit]
        provenance["exported"] = RunRecords.timestamp()
        return [
            "format": Self.format, "version": Self.version, "task": task, "step": step,
            "weights_of_step": weightsOfStep,
            "input": [
                "genes": genes, "shape": ["patients", genes.count],
                "expression_kind": expressionKind.map { $0 as Any } ?? NSNull(),
                "normaliser": [
                    "log_nonzero": n.logNonzero,
                    "mean": n.mean.map(Double.init), "std": n.std.map(Double.init),
                    "formula": "per gene g, in the order of genes: x ← ln x where x > 0 (only if log_nonzero; zeros stay 0); then x ← (x − mean[g]) / std[g]",
                    "fitted_on": "the training split of the run's cohort",
                ] as [String: Any],
            ] as [String: Any],
            "outputs": description.outputs,
            "cancer_types": cancerTypes,
            "architecture": description.architecture,
            "weights": [
                "file": "model.safetensors", "dtype": "F32",
                "tensors": tensors.map { ["name": $0.name, "shape": $0.shape, "arena": $0.arena, "offset": $0.offset] as [String: Any] },
            ] as [String: Any],
            "config": "config.yaml",
            "provenance": provenance,
        ]
    }

    /// `README.md`: what the bundle is and how to use it from Python.
    var readme: String {
        """
        # \(task) model bundle (step \(step))

        Exported by Transcriptile (`transcriptile checkpoint export`) from \(provenance["checkpoint"] as? String ?? "a checkpoint").

        | file | content |
        |---|---|
        | `model.safetensors` | the weights (\(tensors.count) float32 tensors by layer name; `__metadata__`: task, step) |
        | `bundle.json` | the input genes in the model's order, the normaliser, the outputs, the cancer types (code → name), the architecture, provenance |
        | `config.yaml` | the run's effective config |

        The model reads \(genes.count) genes, in the order of `bundle.json`'s `input.genes`, as raw values of kind \
        `\(expressionKind ?? "as the training cohort's")` normalised with `input.normaliser` (\(normalizer.logNonzero ? "log of nonzero values, then " : "")\
        z-score per gene with the training split's mean and standard deviation).

        ## Loading it in Python

        ```python
        \(Self.pythonPreamble)
        \(description.pythonForward)
        ```

        `safetensors.torch.load_file` gives the same tensors as PyTorch tensors; their names and
        shapes follow PyTorch's conventions (`Linear.weight` is [out, in]).

        """
    }

    /// Loading a bundle and normalising a new samples × genes table (numpy), as in Docs/Checkpoints.md.
    static let pythonPreamble = """
        import csv, json, math
        import numpy as np
        from safetensors.numpy import load_file      # pip install safetensors numpy

        bundle = json.load(open("bundle.json"))
        w = load_file("model.safetensors")            # {name: float32 array}
        arch, genes, norm = bundle["architecture"], bundle["input"]["genes"], bundle["input"]["normaliser"]

        # A new table: one row per sample, a header naming the genes (any order, extra columns ignored).
        with open("new_samples.csv", newline="") as f:
            rows = list(csv.reader(f))
        column = {name: i for i, name in enumerate(rows[0])}
        missing = [g for g in genes if g not in column]
        if missing:
            raise SystemExit(f"{len(missing)} of the model's {len(genes)} genes are missing, e.g. {missing[:5]}")
        x = np.array([[float(r[column[g]]) for g in genes] for r in rows[1:]], dtype=np.float32)  # the model's gene order

        # The normaliser: log of nonzero values (if log_nonzero), then z-score per gene.
        if norm["log_nonzero"]:
            x = np.where(x > 0, np.log(np.where(x > 0, x, 1)), x)
        x = (x - np.asarray(norm["mean"], np.float32)) / np.asarray(norm["std"], np.float32)

        def linear(h, name): return h @ w[name + ".weight"].T + w[name + ".bias"]

        """
}
