import Cohorts
import Foundation
import Models
import NN

/// The normalisation layers' ε: NN's default, which both models use.
private let normalizationEpsilon = 1e-5

extension CancerTypeTask: BundleableTask {
    /// The plan holds the normaliser and the numbers of genes and classes; the gene and type
    /// names come from the run's cohort.
    static func describe(model: Model, prepared: Prepared, cohort: RunCohort) throws -> TaskDescription {
        let opened: (reader: CohortReader, genes: [String])
        do { opened = try cohort.opened() } catch {
            let reason = if case let TrainingError.unsuitableCohort(message) = error { message } else { "\(error)" }
            throw TrainingError.unsuitableCohort("\(reason); a \(name) bundle takes the gene names and cancer-type names from the run's cohort \(cohort.path) (its plan holds only their number): restore it, or export the weights alone with --out NAME.safetensors")
        }
        let types = opened.reader.manifest.cancerTypes
        guard opened.genes.count == prepared.genes, types.count == prepared.classes else {
            throw TrainingError.unsuitableCohort("the run's cohort \(cohort.path) has \(opened.genes.count) genes and \(types.count) cancer types, the run trained on \(prepared.genes) and \(prepared.classes); restore the cohort it trained on")
        }
        let layout = ParameterArena()
        _ = ExpressionClassifier(layout, config: model, genes: prepared.genes, classes: prepared.classes)
        let last = model.hidden.count - 1  // hidden is never empty (Config.problems)
        return TaskDescription(
            genes: opened.genes, normalizer: prepared.normalizer, cancerTypes: types,
            outputs: ["logits": ["shape": ["patients", prepared.classes],
                                 "meaning": "a score per cancer type, in the order of cancer_types; softmax gives probabilities, argmax the prediction"]],
            architecture: [
                "network": "ExpressionClassifier", "genes": prepared.genes, "hidden": model.hidden, "classes": prepared.classes,
                "dropout": model.dropout, "layer_norm_epsilon": normalizationEpsilon, "activation": "gelu (exact: x·Φ(x))",
                "forward": [
                    "h = x, the normalised input [patients, genes]",
                    "for i = 0 … \(last): h = gelu(layer_norm(h · hidden{i}.weightᵀ + hidden{i}.bias)), layer_norm over each row with norm{i}.weight, norm{i}.bias (biased variance)",
                    "logits = h · output.weightᵀ + output.bias",
                    "dropout acts in training only",
                ],
            ],
            layout: layout,
            pythonForward: """
                def layer_norm(h, name):
                    m, v = h.mean(1, keepdims=True), h.var(1, keepdims=True)
                    return (h - m) / np.sqrt(v + arch["layer_norm_epsilon"]) * w[name + ".weight"] + w[name + ".bias"]

                erf = np.vectorize(math.erf)
                def gelu(h): return 0.5 * h * (1 + erf(h / math.sqrt(2)))

                h = x
                for i in range(len(arch["hidden"])):
                    h = gelu(layer_norm(linear(h, f"hidden{i}"), f"norm{i}"))
                logits = linear(h, "output")                       # [patients, classes]
                predicted = [bundle["cancer_types"][k] for k in logits.argmax(1)]
                """)
    }
}

extension ExpressionVAETask: BundleableTask {
    /// The plan holds everything: the normaliser, the genes and the cancer-type names.
    static func describe(model: Model, prepared: Prepared, cohort: RunCohort) throws -> TaskDescription {
        let layout = ParameterArena()
        _ = ExpressionVAE(layout, config: model, genes: prepared.genes.count)
        let last = model.hidden.count - 1  // hidden is never empty (Config.problems)
        return TaskDescription(
            genes: prepared.genes, normalizer: prepared.normalizer, cancerTypes: prepared.cancerTypes,
            outputs: [
                "mu": ["shape": ["patients", model.latent], "meaning": "the latent mean: what `transcriptile encode` writes as /mu"],
                "log_variance": ["shape": ["patients", model.latent], "meaning": "the latent log σ²"],
                "reconstruction": ["shape": ["patients", prepared.genes.count], "meaning": "decode(mu): the normalised input reconstructed, in (−1, 1)"],
            ],
            architecture: [
                "network": "ExpressionVAE", "genes": prepared.genes.count, "hidden": model.hidden, "latent": model.latent,
                "input_dropout": model.dropout, "beta": model.beta, "leaky_slope": model.leakySlope,
                "batch_norm_epsilon": normalizationEpsilon,
                "forward": [
                    "h = x, the normalised input [patients, genes]",
                    "for i = 0 … \(last): h = leaky_relu(batch_norm(h · encoder.{i}.weightᵀ + encoder.{i}.bias)), batch_norm with encoder.{i}.norm.running_mean, .running_var, .weight, .bias",
                    "mu = h · encoder.mean.weightᵀ + encoder.mean.bias; log_variance likewise with encoder.log_variance",
                    "h = mu (or z = mu + exp(log_variance / 2) · ε to sample)",
                    "for i = 0 … \(last): h = leaky_relu(batch_norm(h · decoder.{i}.weightᵀ + decoder.{i}.bias)) with decoder.{i}.norm (widths reversed)",
                    "reconstruction = tanh(h · decoder.output.weightᵀ + decoder.output.bias)",
                    "batch_norm uses the running statistics (evaluation mode); the input dropout acts in training only",
                ],
            ],
            layout: layout,
            pythonForward: """
                def batch_norm(h, name):  # evaluation mode: the running statistics
                    scale = 1 / np.sqrt(w[name + ".running_var"] + arch["batch_norm_epsilon"])
                    return (h - w[name + ".running_mean"]) * scale * w[name + ".weight"] + w[name + ".bias"]

                def leaky_relu(h): return np.where(h > 0, h, arch["leaky_slope"] * h)

                h = x
                for i in range(len(arch["hidden"])):
                    h = leaky_relu(batch_norm(linear(h, f"encoder.{i}"), f"encoder.{i}.norm"))
                mu, log_variance = linear(h, "encoder.mean"), linear(h, "encoder.log_variance")   # [patients, latent]
                h = mu
                for i in range(len(arch["hidden"])):
                    h = leaky_relu(batch_norm(linear(h, f"decoder.{i}"), f"decoder.{i}.norm"))
                reconstruction = np.tanh(linear(h, "decoder.output"))                             # [patients, genes], normalised
                """)
    }
}
