import ArgumentParser
import Autograd
import Foundation
import COpenBLAS
import Models
import NN
import Optim
import Tensors

/// Single-rank speed of the numerical core: layers against raw sgemm, the optimizer against
/// memory bandwidth, and full training steps of the three reference models.
struct CoreBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "core",
        abstract: "GFLOP/s of Linear/Conv2d vs raw sgemm, normalisation ms, optimizer GB/s, reference-model step times.",
        discussion: """
            Linear and Conv2d forward+backward are timed through the autograd stack and reported \
            in GFLOP/s of their three GEMMs (forward, input gradient, weight gradient), beside raw \
            cblas_sgemm on the very same GEMM shapes at the same thread count ("ratio" = layer / \
            sgemm). Conv2d 3×3 runs Winograd's F(2×2, 3×3), whose GEMMs are 2.25× smaller than the \
            direct ones counted: its figure is effective, and a ratio above 1 is Winograd's saving. \
            BatchNorm2d and GroupNorm(8) forward+backward in training mode on [32, 16, 64, 64] \
            are reported in ms. The AdamW step is reported in GB/s of memory traffic (7 floats per parameter). \
            Reference models: (a) MLP VAE 5000→1024→256→128, batch 64; (b) UNet 64×64×3, \
            channels 32/64/128, batch 16; (c) MLP 5000→512→128→1 with Cox loss, batch 256; \
            (d) the tile-classifier task's CNN (depth 3, width 16, 4 classes) on 32 tiles of 64×64 \
            bytes, scaled and turned by a TileNormalizer — one step = forward + backward + AdamW. \
            "tile-cnn-parts" times that step's pieces one by one. (e) RNA-CDM's base denoiser at demo \
            size (32×32, dim 32, levels ×1 ×2 ×4, attention at 16² and 8², condition 64), batch 16, \
            P2-weighted ε loss; "sample-denoiser" is one guided sampling step of 16 tiles (32 rows \
            forward); --filter paper adds the paper-scale base denoiser (64×64, dim 128, ×1 ×2 ×3 ×4) \
            on 4 tiles with the process's peak memory. All figures are medians of --repeats runs.
            """)

    @Option(help: "BLAS threads (default: OPENBLAS_NUM_THREADS, else OpenBLAS's own choice).")
    var threads: Int?
    @Option(help: "Timed repetitions per case; the median is reported.")
    var repeats = 5
    @Flag(help: "Skip the reference-model steps (layers and optimizer only).")
    var layersOnly = false
    @Option(help: "Run only the cases whose name contains this text (e.g. unet, conv3x3, batchnorm, adamw).")
    var filter: String?
    @OptionGroup var output: BenchOutputOptions

    func validate() throws {
        guard repeats > 0 else { throw ValidationError("--repeats must be ≥ 1, got \(repeats)") }
        if let threads, !(1...1024).contains(threads) { throw ValidationError("--threads must be in 1…1024, got \(threads)") }
    }

    func run() throws {
        if let threads { BLASThreads.set(threads) }
        let table = BenchTable(
            bench: "core", json: output.json, isPrinter: true, labelled: true,
            title: "single rank, \(BLASThreads.count) BLAS thread(s), OpenBLAS kernels for \(String(cString: openblas_get_corename())), medians of \(repeats)",
            columns: [.init(header: "value", key: "measured"), .init(header: "unit", key: "units"),
                      .init(header: "sgemm", key: "sgemm_gflops"), .init(header: "ratio", key: "ratio")])
        for (batch, inputs, outputs) in [(64, 5000, 1024), (256, 1024, 1024), (512, 1024, 4096)]
        where selected("linear-b\(batch)-\(inputs)x\(outputs)") {
            linear(batch, inputs, outputs, table)
        }
        for (batch, channels, size) in [(16, 32, 64), (16, 64, 32), (16, 128, 16)] where selected("conv3x3-b\(batch)-c\(channels)-\(size)x\(size)") {
            convolution(batch, channels, size, table)
        }
        let norms: [(String, (ParameterArena) -> (Variable) -> Variable)] = [
            ("batchnorm2d", { BatchNorm2d($0, "norm", 16).callAsFunction }),
            ("groupnorm8", { GroupNorm($0, "norm", groups: 8, channels: 16).callAsFunction }),
        ]
        for (name, make) in norms where selected("\(name)-b32-c16-64x64") { normalization(name, make, table) }
        if selected("adamw-step") { optimizer(table) }
        if selected("attention-64x64") { attention(table) }
        guard !layersOnly else { return }
        let models: [(String, Int, () -> ReferenceModel)] = [
            ("vae-mlp-5000", 64, { ReferenceVAE() }), ("unet-64x64", 16, { ReferenceUNet() }), ("cox-mlp-5000", 256, { ReferenceCox() }),
            ("tile-cnn-64x64", 32, { ReferenceTileCNN() }), ("denoiser-32x32", 16, { ReferenceDenoiser() }),
        ]
        for (name, batch, make) in models where selected("step-\(name)") { step(name, batch, make(), table) }
        if selected("sample-denoiser-32x32") { sampling(table) }
        // The paper-scale base stage only when asked for (--filter paper): seconds per step.
        if let filter, filter.contains("paper") { paperDenoiser(table) }
        if selected("tile-cnn-parts") { tileParts(table) }
    }

    private func selected(_ name: String) -> Bool { filter.map(name.contains) ?? true }

    /// One GEMM: C[m×n] = op(A)·op(B), with k the inner size.
    struct GEMM { var m, n, k: Int; var transA = false, transB = false; var flops: Double { 2 * Double(m * n * k) } }

    private func linear(_ batch: Int, _ inputs: Int, _ outputs: Int, _ table: BenchTable) {
        let arena = ParameterArena(seed: 1)
        let layer = Linear(arena, "fc", inputs, outputs)
        arena.seal()
        let x = Tensor(shape: [batch, inputs], values: RandomKey(seed: 1, stream: RandomStream.syntheticInputs).normal(batch * inputs))
        let upstream = Tensor(repeating: 1e-3, shape: [batch, outputs])
        let gemms = [GEMM(m: batch, n: outputs, k: inputs, transB: true), GEMM(m: batch, n: inputs, k: outputs),
                     GEMM(m: outputs, n: inputs, k: batch, transA: true)]
        let seconds = median {
            layer(Variable(x, gradient: Tensor(zeros: x.shape))).backward(seed: upstream)
        }
        report("linear-b\(batch)-\(inputs)x\(outputs)-fwd+bwd", gemms, seconds, table)
    }

    private func convolution(_ batch: Int, _ channels: Int, _ size: Int, _ table: BenchTable) {
        let arena = ParameterArena(seed: 1)
        let layer = Conv2d(arena, "conv", channels, channels, kernel: 3, padding: 1)
        arena.seal()
        let count = batch * channels * size * size
        let x = Tensor(shape: [batch, channels, size, size], values: RandomKey(seed: 1, stream: RandomStream.syntheticInputs).normal(count))
        let upstream = Tensor(repeating: 1e-3, shape: x.shape)
        let (patch, spatial) = (channels * 9, size * size)
        // The direct lowering's GEMMs (forward, weight gradient, input gradient as a transposed
        // convolution), against which Winograd's time gives an effective rate.
        let perImage = [GEMM(m: channels, n: spatial, k: patch), GEMM(m: channels, n: patch, k: spatial, transB: true),
                        GEMM(m: channels, n: spatial, k: patch)]
        let gemms = Array(repeating: perImage, count: batch).flatMap { $0 }
        let seconds = median {
            layer(Variable(x, gradient: Tensor(zeros: x.shape))).backward(seed: upstream)
        }
        report("conv3x3-b\(batch)-c\(channels)-\(size)x\(size)-fwd+bwd", gemms, seconds, table)
    }

    /// A normalisation layer (training mode) forward+backward on [32, 16, 64, 64], in ms.
    private func normalization(_ name: String, _ make: (ParameterArena) -> (Variable) -> Variable, _ table: BenchTable) {
        let arena = ParameterArena(seed: 1)
        let layer = make(arena)
        arena.seal()
        let shape = [32, 16, 64, 64]
        let x = Tensor(shape: shape, values: RandomKey(seed: 1, stream: RandomStream.syntheticInputs).normal(shape.reduce(1, *)))
        let upstream = Tensor(repeating: 1e-3, shape: shape), gradient = Tensor(zeros: shape)  // dx adds into it
        let seconds = median { layer(Variable(x, gradient: gradient)).backward(seed: upstream) }
        table.row(case: "\(name)-b32-c16-64x64-fwd+bwd", values: [seconds * 1e3, "ms", "-", "-"], value: seconds * 1e3, unit: "ms")
    }

    private func report(_ name: String, _ gemms: [GEMM], _ seconds: Double, _ table: BenchTable) {
        let flops = gemms.map(\.flops).reduce(0, +)
        let raw = flops / rawGEMMSeconds(gemms) / 1e9, layer = flops / seconds / 1e9
        table.row(case: name, values: [layer, "GFLOP/s", raw, layer / raw], value: layer, unit: "GFLOP/s")
    }

    /// Median time of the GEMMs alone, straight through cblas_sgemm on preallocated buffers.
    private func rawGEMMSeconds(_ gemms: [GEMM]) -> Double {
        let largest = gemms.map { max($0.m * $0.k, $0.k * $0.n, $0.m * $0.n) }.max()!
        let a = Tensor(repeating: 0.5, shape: [largest]), b = Tensor(repeating: 0.25, shape: [largest]), c = Tensor(zeros: [largest])
        return median {
            for g in gemms {
                Float.gemm(transA: g.transA, transB: g.transB, m: g.m, n: g.n, k: g.k, alpha: 1,
                           a: a.pointer(Float.self), lda: g.transA ? g.m : g.k, b: b.pointer(Float.self), ldb: g.transB ? g.k : g.n,
                           beta: 0, c: c.pointer(Float.self), ldc: g.n)
            }
        }
    }

    private func optimizer(_ table: BenchTable) {
        let count = 16 << 20
        let parameters = Tensor(repeating: 0.1, shape: [count]), gradients = Tensor(repeating: 1e-3, shape: [count])
        var adamW = Adam.adamW()
        let seconds = median { adamW.step(parameters: parameters, gradients: gradients, lr: 1e-3) }
        let gigabytes = Double(count * 7 * 4) / 1e9
        table.row(case: "adamw-step-16M-params", values: [gigabytes / seconds, "GB/s", "-", "-"], value: gigabytes / seconds, unit: "GB/s")
    }

    private func step(_ name: String, _ batch: Int, _ model: ReferenceModel, _ table: BenchTable) {
        var adamW = Adam.adamW()
        let seconds = median {
            model.arena.zeroGradients()
            model.loss().backward()
            adamW.step(parameters: model.arena.values, gradients: model.arena.gradients, lr: 1e-4)
        }
        table.row(case: "step-\(name)-b\(batch)", values: [seconds * 1e3, "ms/step", "-", "-"], value: seconds * 1e3, unit: "ms/step")
        table.note("\(name): \(model.arena.count) parameters, \(String(format: "%.1f", Double(batch) / seconds)) samples/s")
    }

    /// One step of the paper-scale base denoiser on 4 tiles (a worker's micro-batch), and the
    /// process's peak resident memory after it.
    private func paperDenoiser(_ table: BenchTable) {
        let model = ReferenceDenoiser(batch: 4, config: ReferenceDenoiser.paperConfig, latentDim: 200)
        step("denoiser-paper-64x64", 4, model, table)
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        table.note("denoiser-paper-64x64: peak resident memory \(usage.ru_maxrss / 1024) MiB (parameters, gradients and Adam's moments: \(16 * model.arena.count >> 20) MiB)")
    }

    /// Self-attention over a 64 × 64 feature map (4096 positions; batch 2, 4 heads of 32),
    /// forward + backward: in blocks, and the plain way that holds every score (and its softmax
    /// and their gradients) — the memory each needs for the scores is in the note.
    private func attention(_ table: BenchTable) {
        let (n, t, d) = (2 * 4, 64 * 64, 32)
        let inputs = [UInt64(2), 3, 4].map { seed in
            Variable(Tensor(shape: [n, t, d], values: RandomKey(seed: seed, stream: RandomStream.syntheticInputs).normal(n * t * d)),
                     gradient: Tensor(zeros: [n, t, d]))
        }
        let (q, k, v) = (inputs[0], inputs[1], inputs[2])
        let scale = 1 / Double(d).squareRoot(), upstream = Tensor(repeating: 1e-3, shape: [n, t, d])
        let blocked = median { blockAttention(q, k, v, scale: scale).backward(seed: upstream) }
        let plain = median { (q.matmul(k, transposeOther: true) * scale).softmax().matmul(v).backward(seed: upstream) }
        table.row(case: "attention-64x64-b2-h4-d32-blocked", values: [blocked * 1e3, "ms", "-", "-"], value: blocked * 1e3, unit: "ms")
        table.row(case: "attention-64x64-b2-h4-d32-plain", values: [plain * 1e3, "ms", "-", "-"], value: plain * 1e3, unit: "ms")
        let (block, whole) = (Tensor.attentionBlock.queries * Tensor.attentionBlock.keys * 4 * 2, n * t * t * 4)
        table.note("attention-64x64: scores held at once — blocked \(block / 1024) KiB per thread (a block and its gradient); plain \(whole >> 20) MiB per tensor (scores, softmax and their gradients: 4 of them)")
    }

    /// One guided denoising step of the reference denoiser's 16 tiles (32 rows through the
    /// network), and what it means in tiles per second at 50 steps.
    private func sampling(_ table: BenchTable) {
        let model = ReferenceDenoiser()
        let seconds = median { _ = model.guidedForward() }
        table.row(case: "sample-denoiser-32x32-b16", values: [seconds * 1e3, "ms/step", "-", "-"], value: seconds * 1e3, unit: "ms/step")
        table.note(String(format: "sample-denoiser-32x32: %.1f tiles/s at 50 guided steps", 16 / (50 * seconds)))
    }

    /// The median wall time of `repeats` runs of `body`, after one warm-up run.
    func median(_ body: () -> Void) -> Double { medianSeconds(repeats: repeats, warmUp: true, body) }
}
