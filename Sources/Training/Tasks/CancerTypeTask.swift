import Autograd
import Cohorts
import Foundation
import Models
import NN
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

    public init(model: Model, prepared: Prepared, arena: ParameterArena, cohort: CohortReader) throws {
        self.prepared = prepared
        network = ExpressionClassifier(arena, config: model, genes: prepared.genes, classes: prepared.classes)
    }

    public var normalizer: ExpressionNormalizer { prepared.normalizer }

    public func loss(_ batch: PatientBatch, rows: Range<Int>, key: RandomKey) -> Variable {
        Loss.crossEntropy(logits(batch, rows: rows, key: key), labels: Array(batch.cancerTypes[rows]))
    }

    public func evaluate(_ batch: PatientBatch) -> [String: Double] {
        let rows = 0..<batch.patients.count
        let logits = logits(batch, rows: rows, key: RandomKey(seed: 0, stream: 0)).value
        let loss = Loss.crossEntropy(Variable(logits), labels: batch.cancerTypes).value.scalars[0]
        let values = logits.floats, classes = prepared.classes
        var correct = 0
        for row in rows {
            let scores = values[(row * classes)..<((row + 1) * classes)]
            if scores.indices.max(by: { scores[$0] < scores[$1] })! - row * classes == batch.cancerTypes[row] { correct += 1 }
        }
        return ["count": Double(rows.count), "loss": loss * Double(rows.count), "accuracy": Double(correct)]
    }

    public func setTraining(_ training: Bool) { network.isTraining = training }

    private func logits(_ batch: PatientBatch, rows: Range<Int>, key: RandomKey) -> Variable {
        network(profiles(batch, rows: rows), key: key)
    }
}
