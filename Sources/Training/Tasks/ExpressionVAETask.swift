import Autograd
import Cohorts
import Foundation
import Models
import NN
import Plotting
import Tensors

/// RNA-CDM stage 1: the β-VAE (`ExpressionVAE`) that compresses a patient's bulk RNA into the
/// latent the diffusion stage is conditioned on. Trained on the training split's normalised RNA
/// (log of nonzero values, z-score with training statistics); evaluated by reconstruction and
/// by how well the latent separates cancer types.
public final class ExpressionVAETask: ExpressionProfileTask {
    public typealias Model = ExpressionVAE.Config

    public struct Prepared: Codable, Sendable {
        public var normalizer: ExpressionNormalizer
        public var genes: [String]
        public var cancerTypes: [String]

        enum CodingKeys: String, CodingKey { case normalizer, genes, cancerTypes = "cancer_types" }
    }

    public static let name = "rna-vae"
    public static let purpose = "RNA-CDM's β-VAE on bulk RNA (MSE + β·KL; reconstruction, gene correlation, k-NN and silhouette of the latent)"
    public static let defaultModel = Model()
    public static let minimumMicroBatch = 2

    public static func problems(in model: Model) -> [String] { model.problems() }

    public static func prepare(cohort: CohortReader, split: DataSplit, model: Model) throws -> Prepared {
        let genes = try cohort.genes()
        guard !genes.isEmpty else { throw TrainingError.unsuitableCohort("the cohort has no RNA (/rna/expression); \(name) needs it") }
        guard split.train.count >= 2 else {
            throw TrainingError.unsuitableCohort("\(split.train.count) training patient(s): BatchNorm needs at least 2; use a larger cohort or train.split.train")
        }
        return Prepared(normalizer: try ExpressionNormalizer(reader: cohort, patients: split.train), genes: genes,
                        cancerTypes: try cohort.layout().cancerTypes)
    }

    public let vae: ExpressionVAE
    public let prepared: Prepared

    public init(model: Model, prepared: Prepared, arena: ParameterArena, cohort: CohortReader, companions: Companions) throws {
        self.prepared = prepared
        vae = ExpressionVAE(arena, config: model, genes: prepared.genes.count)
    }

    public var normalizer: ExpressionNormalizer { prepared.normalizer }

    public func loss(_ batch: PatientBatch, rows: Range<Int>, key: RandomKey) -> Variable {
        vae.loss(profiles(batch, rows: rows), key: key).total
    }

    /// Sums of the loss and its terms (`loss_reconstruction`, `loss_kl`); ε is keyed by the
    /// patient, so evaluations repeat exactly.
    public func evaluate(_ batch: PatientBatch) -> [String: Double] {
        let count = batch.patients.count
        guard count > 0 else { return [:] }
        let terms = vae.loss(profiles(batch, rows: 0..<count), key: RandomKey(seed: 0, stream: RandomStream.step, sample: UInt32(truncatingIfNeeded: batch.patients[0])))
        let n = Double(count)
        // The loss's own terms (z sampled, as in training); `finalEvaluation`'s reconstruction_mse decodes μ.
        return ["count": n, "loss": terms.total.value.scalars[0] * n, "loss_reconstruction": terms.reconstruction.value.scalars[0] * n,
                "loss_kl": terms.divergence.value.scalars[0] * n]
    }

    public func setTraining(_ training: Bool) { vae.setTraining(training) }

    /// μ and log σ² [patients × latent] of `patients` of `cohort` (evaluation mode), in blocks of 256.
    public func encode(_ cohort: CohortReader, patients: [Int]) throws -> (mean: [Float], logVariance: [Float]) {
        var mean = [Float](), logVariance = [Float]()
        for start in stride(from: 0, to: patients.count, by: 256) {
            let block = Array(patients[start..<min(patients.count, start + 256)])
            let part = encode(profiles: try cohort.expression(block))
            mean += part.mean
            logVariance += part.logVariance
        }
        return (mean, logVariance)
    }

    /// The genes the model reads, in its order.
    public var genes: [String] { prepared.genes }

    /// μ and log σ² [profiles × latent] of RNA profiles as the cohort stores them (rows of
    /// `genes.count` values, in `genes` order), normalised as in training.
    public func encode(profiles: [Float]) -> (mean: [Float], logVariance: [Float]) {
        var values = profiles
        normalizer.apply(&values)
        let x = Tensor(shape: [values.count / max(1, prepared.genes.count), prepared.genes.count], values: values)
        let (mu, logVar) = GradMode.withoutGradients { vae.encode(Variable(x), key: RandomKey(seed: 0, stream: RandomStream.step)) }
        return (mu.value.floats, logVar.value.floats)
    }

    private func normalized(_ cohort: CohortReader, _ patients: [Int]) throws -> Tensor {
        var values = try cohort.expression(patients)
        normalizer.apply(&values)
        return Tensor(shape: [patients.count, prepared.genes.count], values: values)
    }

    /// On the target patients: reconstruction MSE (decoding μ) and the mean and median over genes
    /// of Pearson's r between input and reconstruction across patients; the latent's k-NN
    /// accuracy of cancer type (k = 5, neighbours from the reference patients) and silhouette
    /// (by cancer type); `latent_pca.png` and `.svg`, the target latents on their first two
    /// principal components coloured by cancer type.
    public func finalEvaluation(_ set: EvaluationSet, into directory: URL) throws -> [String: Double] {
        let genes = prepared.genes.count, latent = vae.config.latent
        guard !set.targetPatients.isEmpty else { return [:] }
        var targetMean = [Float](), reconstruction = [Float](), input = [Float]()
        for start in stride(from: 0, to: set.targetPatients.count, by: 256) {
            let block = Array(set.targetPatients[start..<min(set.targetPatients.count, start + 256)])
            let x = try normalized(set.target, block)
            let (mu, decoded) = GradMode.withoutGradients {
                let mu = vae.encode(Variable(x), key: RandomKey(seed: 0, stream: RandomStream.step)).mean
                return (mu, vae.decode(mu))
            }
            targetMean += mu.value.floats
            reconstruction += decoded.value.floats
            input += x.floats
        }
        let squared = zip(reconstruction, input).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
        let correlations = LatentMetrics.columnCorrelations(reconstruction, input, columns: genes).filter { $0.isFinite }.sorted()
        let referenceMean = try encode(set.reference, patients: set.referencePatients).mean
        let allReferenceTypes = try set.reference.cancerTypes(), allTargetTypes = try set.target.cancerTypes()
        let targetTypes = set.targetPatients.map { allTargetTypes[$0] }
        let targetNames = try set.target.layout().cancerTypes
        // Types are compared by name: another cohort may number them differently.
        let referenceTypes = set.referencePatients.map { prepared.cancerTypes.indices.contains(allReferenceTypes[$0]) ? prepared.cancerTypes[allReferenceTypes[$0]] : "?" }
        let targetTypeNames = targetTypes.map { targetNames.indices.contains($0) ? targetNames[$0] : "?" }
        let names = Array(Set(referenceTypes + targetTypeNames)).sorted()
        let index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        var figures: [String: Double] = [
            "reconstruction_mse": squared / Double(input.count),
            "gene_correlation_mean": correlations.isEmpty ? .nan : correlations.reduce(0, +) / Double(correlations.count),
            "gene_correlation_median": correlations.isEmpty ? .nan : correlations[correlations.count / 2],
            "knn_accuracy": LatentMetrics.knnAccuracy(reference: referenceMean, referenceLabels: referenceTypes.map { index[$0]! },
                                                      queries: targetMean, queryLabels: targetTypeNames.map { index[$0]! }, dimension: latent),
            "silhouette": LatentMetrics.silhouette(targetMean, labels: targetTypeNames.map { index[$0]! }, dimension: latent),
            "patients": Double(set.targetPatients.count),
        ]
        let (scores, explained) = LatentMetrics.principalComponents(targetMean, dimension: latent)
        figures["pca_explained_1"] = explained[0]
        figures["pca_explained_2"] = explained.count > 1 ? explained[1] : .nan
        let points = scores.map { (x: $0.first ?? .nan, y: $0.count > 1 ? $0[1] : 0) }
        let plot = Chart(title: "VAE latent (μ) of \(set.name), PCA", xLabel: String(format: "PC1 (%.0f %%)", 100 * (figures["pca_explained_1"] ?? .nan)),
                         yLabel: String(format: "PC2 (%.0f %%)", 100 * (figures["pca_explained_2"] ?? .nan)),
                         series: Series.groups(points, labels: targetTypeNames))
        try plot.write(to: directory.appendingPathComponent("latent_pca"))
        return figures
    }
}
