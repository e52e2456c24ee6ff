import Autograd
import Cohorts
import Foundation
import Models
import NN
import Plotting
import Tensors

/// Cancer type from bulk RNA (an `ExpressionClassifier` with cross-entropy): the runtime's
/// proving task. On the simulated cohort the types differ in their cell-type mix, so the RNA
/// carries the answer; accuracy on held-out patients says how much of it the model found.
public final class CancerTypeTask: ExpressionProfileTask {
    public typealias Model = ExpressionClassifier.Config

    public struct Prepared: Codable, Sendable {
        public var normalizer: ExpressionNormalizer
        public var classes: Int
        public var genes: Int
    }

    public static let name = "cancer-type"
    public static let purpose = "MLP classifier of cancer type from bulk RNA (cross-entropy; accuracy on held-out patients)"
    public static let defaultModel = Model()

    public static func problems(in model: Model) -> [String] { model.problems() }

    public static func prepare(cohort: CohortReader, split: DataSplit, model: Model) throws -> Prepared {
        guard try !cohort.genes().isEmpty else { throw TrainingError.unsuitableCohort("the cohort has no RNA (/rna/expression); \(name) needs it") }
        let classes = try cohort.layout().cancerTypes.count
        guard classes >= 2 else {
            throw TrainingError.unsuitableCohort("the cohort has \(classes) cancer type; \(name) needs at least 2 to classify")
        }
        return Prepared(normalizer: try ExpressionNormalizer(reader: cohort, patients: split.train), classes: classes,
                        genes: try cohort.genes().count)
    }

    private let network: ExpressionClassifier
    private let prepared: Prepared

    public init(model: Model, prepared: Prepared, arena: ParameterArena, cohort: CohortReader, companions: Companions) throws {
        self.prepared = prepared
        network = ExpressionClassifier(arena, config: model, genes: prepared.genes, classes: prepared.classes)
    }

    public var normalizer: ExpressionNormalizer { prepared.normalizer }

    public func loss(_ batch: PatientBatch, rows: Range<Int>, key: RandomKey) -> Variable {
        Loss.crossEntropy(logits(batch, rows: rows, key: key), labels: Array(batch.cancerTypes[rows]))
    }

    public func evaluate(_ batch: PatientBatch) -> [String: Double] {
        let rows = 0..<batch.patients.count
        let logits = logits(batch, rows: rows, key: RandomKey(seed: 0, stream: RandomStream.step)).value
        let loss = Loss.crossEntropy(Variable(logits), labels: batch.cancerTypes).value.scalars[0]
        let correct = zip(Classification.predictions(logits), batch.cancerTypes).filter { $0 == $1 }.count
        return ["count": Double(rows.count), "loss": loss * Double(rows.count), "accuracy": Double(correct)]
    }

    /// On the target patients: cross-entropy, accuracy, the chance level (the commonest type's
    /// share) and `confusion_matrix.png` (.svg). Types are matched by name (another cohort may
    /// number them differently); patients of a type the run never saw are counted apart.
    public func finalEvaluation(_ set: EvaluationSet, into directory: URL) throws -> [String: Double] {
        let names = try set.reference.layout().cancerTypes, targetNames = try set.target.layout().cancerTypes
        let allTypes = try set.target.cancerTypes()
        let known = set.targetPatients.filter { names.contains(targetNames[allTypes[$0]]) }
        guard !known.isEmpty else { return ["patients_of_unknown_type": Double(set.targetPatients.count)] }
        let truth = known.map { patient in names.firstIndex(of: targetNames[allTypes[patient]]) ?? 0 }
        var predicted = [Int](), lossSum = 0.0
        for start in stride(from: 0, to: known.count, by: 256) {
            let rows = start..<min(known.count, start + 256)
            var values = try set.target.expression(Array(known[rows]))
            normalizer.apply(&values)
            let logits = GradMode.withoutGradients {
                network(Variable(Tensor(shape: [rows.count, prepared.genes], values: values)), key: RandomKey(seed: 0, stream: RandomStream.step)).value
            }
            lossSum += Loss.crossEntropy(Variable(logits), labels: Array(truth[rows])).value.scalars[0] * Double(rows.count)
            predicted += Classification.predictions(logits)
        }
        try ConfusionMatrix(title: "Cancer type of \(set.name) from RNA", classNames: names, truth: truth, predicted: predicted)
            .write(to: directory.appendingPathComponent("confusion_matrix"))
        var figures = ["loss": lossSum / Double(known.count), "accuracy": Double(zip(predicted, truth).filter { $0 == $1 }.count) / Double(known.count),
                       "chance_accuracy": Classification.chance(truth), "patients": Double(known.count)]
        if known.count < set.targetPatients.count { figures["patients_of_unknown_type"] = Double(set.targetPatients.count - known.count) }
        return figures
    }

    public func setTraining(_ training: Bool) { network.setTraining(training) }

    private func logits(_ batch: PatientBatch, rows: Range<Int>, key: RandomKey) -> Variable {
        network(profiles(batch, rows: rows), key: key)
    }
}
