import Autograd
import Cohorts
import Foundation
import Tensors

/// A task whose samples are patients' bulk RNA profiles, normalised with the training split's
/// statistics (log of nonzero values, z-score per gene) stored in the run plan.
public protocol ExpressionProfileTask: Trainable where Batch == PatientBatch {
    var normalizer: ExpressionNormalizer { get }
}

extension ExpressionProfileTask {
    public static var unit: SampleUnit { .patient }

    public func batches(cohort: URL, samples: [Int], sampler: EpochSampler, rank: Int, workers: Int, steps: Int) -> Prefetcher<PatientBatch> {
        CohortLoader.patients(directory: cohort, subset: samples, sampler: sampler, normalizer: normalizer,
                              rank: rank, workers: workers, steps: steps)
    }

    /// Rows `rows` of `batch`'s profiles as a [rows × genes] input.
    func profiles(_ batch: PatientBatch, rows: Range<Int>) -> Variable {
        let genes = normalizer.mean.count
        return Variable(Tensor(shape: [rows.count, genes], values: Array(batch.expression[(rows.lowerBound * genes)..<(rows.upperBound * genes)])))
    }
}
