import Autograd
import Cohorts
import Foundation
import Models
import NN
import Plotting
import Tensors

/// Survival from bulk RNA: an MLP (`ExpressionClassifier` with one output) gives each patient a
/// risk score, trained with the Cox partial likelihood (DeepSurv; Path-GPTOmic's survival head
/// uses the same loss). A patient's risk set spans the whole global batch, so the loss is formed
/// over it (`GlobalBatchTrainable`): the same gradient on any number of workers. With the
/// companion `rna_encoder` (a trained rna-vae run) the MLP reads the frozen VAE's latent μ
/// instead of the profile: survival from RNA-CDM's latent.
public final class SurvivalCoxTask: ExpressionProfileTask, GlobalBatchTrainable {
    public typealias Model = ExpressionClassifier.Config

    public struct Prepared: Codable, Sendable {
        public var normalizer: ExpressionNormalizer
        public var genes: Int
    }

    public static let name = "survival-cox"
    public static let purpose = "Cox model of survival from bulk RNA (partial likelihood over the global batch; C-index on held-out patients)"
    public static let defaultModel = Model(hidden: [64], dropout: 0.1)
    public static let companions = [CompanionRequirement(
        name: "rna_encoder", task: ExpressionVAETask.name, required: false,
        purpose: "its encoder's latent μ, frozen, is the model's input instead of the RNA profile")]

    public static func problems(in model: Model) -> [String] { model.problems() }

    public static func prepare(cohort: CohortReader, split: DataSplit, model: Model) throws -> Prepared {
        guard try !cohort.genes().isEmpty else { throw TrainingError.unsuitableCohort("the cohort has no RNA (/rna/expression); \(name) needs it") }
        guard let survival = try cohort.survival() else {
            throw TrainingError.unsuitableCohort("the cohort records no survival (/patients/survival_days, /patients/event); \(name) needs it — import with --survival-time and --event")
        }
        guard split.train.contains(where: { survival.events[$0] }) else {
            throw TrainingError.unsuitableCohort("no training patient has an event (all censored): the Cox likelihood has nothing to learn from")
        }
        return Prepared(normalizer: try ExpressionNormalizer(reader: cohort, patients: split.train), genes: try cohort.genes().count)
    }

    private let network: ExpressionClassifier
    private let prepared: Prepared
    /// The frozen VAE whose latent is the input, if the config named one.
    private let encoder: ExpressionVAETask?

    public init(model: Model, prepared: Prepared, arena: ParameterArena, cohort: CohortReader, companions: Companions) throws {
        self.prepared = prepared
        encoder = try companions.model("rna_encoder", as: ExpressionVAETask.self)
        network = ExpressionClassifier(arena, config: model, genes: encoder?.vae.config.latent ?? prepared.genes, classes: 1)
    }

    /// The encoder's own normalisation when there is one: it must see RNA as it was trained on.
    public var normalizer: ExpressionNormalizer { encoder?.normalizer ?? prepared.normalizer }

    /// The network's input from normalised profiles [rows × genes]: them, or the encoder's μ.
    private func input(_ profiles: Variable) -> Variable {
        guard let encoder else { return profiles }
        return Variable(GradMode.withoutGradients { encoder.vae.encode(profiles, key: RandomKey(seed: 0, stream: RandomStream.step)).mean.value })
    }
    public let outputWidth = 1
    public let lossInputWidth = 2

    /// Risk scores [rows × 1].
    public func outputs(_ batch: PatientBatch, rows: Range<Int>, key: RandomKey) -> Variable {
        network(input(profiles(batch, rows: rows)), key: key)
    }

    /// Survival days and event (1 or 0) of each row.
    public func lossInputs(_ batch: PatientBatch, rows: Range<Int>) -> [Float] {
        rows.flatMap { [batch.survivalDays[$0], batch.events[$0] ? 1 : 0] }
    }

    public func globalLoss(outputs: Variable, inputs: [Float]) -> Variable {
        let n = outputs.shape[0]
        return Loss.coxPartialLikelihood(risk: outputs.reshaped([n]), times: (0..<n).map { Double(inputs[2 * $0]) },
                                         events: (0..<n).map { inputs[2 * $0 + 1] != 0 })
    }

    /// Counts only: the runtime adds the loss of each evaluation chunk, formed over the chunk.
    public func evaluate(_ batch: PatientBatch) -> [String: Double] {
        ["count": Double(batch.count), "events": Double(batch.events.filter { $0 }.count)]
    }

    public func setTraining(_ training: Bool) { network.setTraining(training) }

    /// On the target patients: Harrell's C-index of the risk scores, and `survival_by_risk.png`
    /// (.svg): Kaplan–Meier curves of the patients above and below the median risk.
    public func finalEvaluation(_ set: EvaluationSet, into directory: URL) throws -> [String: Double] {
        guard !set.targetPatients.isEmpty, let survival = try set.target.survival() else { return [:] }
        var risk = [Double]()
        for start in stride(from: 0, to: set.targetPatients.count, by: 256) {
            let block = Array(set.targetPatients[start..<min(set.targetPatients.count, start + 256)])
            var values = try set.target.expression(block)
            normalizer.apply(&values)
            let x = input(Variable(Tensor(shape: [block.count, prepared.genes], values: values)))
            risk += GradMode.withoutGradients { network(x, key: RandomKey(seed: 0, stream: RandomStream.step)) }.value.floats.map(Double.init)
        }
        let times = set.targetPatients.map { Double(survival.days[$0]) }, events = set.targetPatients.map { survival.events[$0] }
        let median = risk.sorted()[risk.count / 2]
        let high = risk.indices.filter { risk[$0] >= median }, low = risk.indices.filter { risk[$0] < median }
        let chart = Chart(title: "Survival of \(set.name) by predicted risk", xLabel: "days", yLabel: "surviving fraction",
                          series: [Series.kaplanMeier("risk ≥ median (\(high.count))", times: high.map { times[$0] }, events: high.map { events[$0] }),
                                   Series.kaplanMeier("risk < median (\(low.count))", times: low.map { times[$0] }, events: low.map { events[$0] })])
        try chart.write(to: directory.appendingPathComponent("survival_by_risk"))
        return ["c_index": SurvivalMetrics.concordanceIndex(risk: risk, times: times, events: events),
                "patients": Double(risk.count), "events": Double(events.filter { $0 }.count)]
    }
}
