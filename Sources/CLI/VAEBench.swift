import ArgumentParser
import Autograd
import Foundation
import Models
import NN
import Optim
import Tensors

/// `transcriptile bench vae`: one worker's training step of RNA-CDM's β-VAE at the paper's scale.
struct VAEBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vae",
        abstract: "Step time per worker of RNA-CDM's β-VAE at paper scale (17,655 genes, 6000/4000 hidden, latent 200, batch 128).",
        discussion: """
            One step is what a worker does with its micro-batch: forward (input dropout, BatchNorm \
            on batch statistics, sampling), backward, and an Adam update of all 262 M parameters \
            (4.2 GB of parameters, gradients and moments). Threads: OPENBLAS_NUM_THREADS (as a \
            rank's threads_per_rank). The effective GFLOP/s counts the GEMMs (6 · weights · batch).
            """)

    @Option(help: "Genes (input and output width).")
    var genes = 17_655
    @Option(help: "Samples per step (one worker's micro-batch).")
    var batch = 128
    @Option(help: "Repeats after one warm-up step (the median is reported).")
    var repeats = 3
    @OptionGroup var output: BenchOutputOptions

    func validate() throws {
        guard (1...100_000).contains(genes) else { throw ValidationError("--genes must be in 1…100000, got \(genes)") }
        guard batch <= 4096 else { throw ValidationError("--batch must be ≤ 4096, got \(batch)") }
        guard batch >= 2 else { throw ValidationError("--batch must be ≥ 2 (BatchNorm trains on a batch's statistics), got \(batch)") }
        guard repeats > 0 else { throw ValidationError("--repeats must be ≥ 1, got \(repeats)") }
    }

    func run() throws {
        let arena = ParameterArena(seed: 1)
        let vae = ExpressionVAE(arena, config: ExpressionVAE.Config(), genes: genes)
        arena.seal()
        let x = Variable(Tensor(shape: [batch, genes], values: RandomKey(seed: 2, stream: RandomStream.syntheticInputs).normal(batch * genes)))
        var adam = Adam()
        var step: UInt32 = 0
        let seconds = medianSeconds(repeats: repeats, warmUp: true) {
            arena.zeroGradients()
            vae.loss(x, key: RandomKey(seed: 3, stream: RandomStream.step, step: step)).total.backward()
            adam.step(parameters: arena.values, gradients: arena.gradients, lr: 3e-3)
            step += 1
        }
        let weights = arena.entries.filter { $0.shape.count == 2 }.map(\.count).reduce(0, +)
        let gflops = 6 * Double(weights) * Double(batch) / seconds / 1e9
        let table = BenchTable(bench: "vae", json: output.json, isPrinter: true, labelled: true,
                               title: "RNA-CDM β-VAE, \(genes) genes, \(arena.count) parameters, batch \(batch), \(BLASThreads.count) thread(s), median of \(repeats)",
                               columns: [.init(header: "value", key: "value"), .init(header: "unit", key: "unit")])
        table.row(case: "step (forward + backward + Adam)", values: [seconds * 1e3, "ms"], value: seconds * 1e3, unit: "ms/step")
        table.row(case: "samples per second", values: [Double(batch) / seconds, "samples/s"], value: Double(batch) / seconds, unit: "samples/s")
        table.row(case: "effective GEMM rate", values: [gflops, "GFLOP/s"], value: gflops, unit: "GFLOP/s")
    }
}
