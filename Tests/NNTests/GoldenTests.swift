import Autograd
import NN
import TestSupport
import Tensors
import XCTest

/// Layers and losses in float32 against PyTorch (float64) on the same inputs and weights:
/// outputs and every input and parameter gradient.
final class GoldenTests: XCTestCase {
    /// Builds the layer in a fresh float32 arena, loads the fixture's weights, runs forward and
    /// backward with the fixture's upstream gradient, and compares everything.
    private func check(
        _ name: String, inputs: [String], absolute: Double = 2e-5, relative: Double = 2e-4,
        file: StaticString = #filePath, line: UInt = #line,
        _ build: (ParameterArena) -> ([Variable]) -> Variable
    ) throws {
        let fixture = try Fixture(name)
        let arena = ParameterArena()
        let forward = build(arena)
        arena.seal()
        XCTAssertEqual(arena.entries.map(\.name).sorted(), fixture.names("parameters"), "parameter names", file: file, line: line)
        for parameter in fixture.names("parameters") {
            arena.values(of: arena.entry(named: parameter)!).assign(fixture.tensor("parameters", parameter).scalars)
        }
        let variables = inputs.map { input in
            let x = fixture.tensor("inputs", input)
            return Variable(x, gradient: Tensor(zeros: x.shape))
        }
        let y = forward(variables)
        assertClose(y.value, fixture.tensor("output"), absolute: absolute, relative: relative, "\(name) output", file: file, line: line)
        (y * Variable(fixture.tensor("upstream"))).sum().backward()
        for (input, variable) in zip(inputs, variables) where fixture.value("input_grads", input) != nil {
            assertClose(variable.grad!, fixture.tensor("input_grads", input), absolute: absolute, relative: relative,
                        "\(name) d/d\(input)", file: file, line: line)
        }
        for parameter in fixture.names("parameter_grads") {
            assertClose(arena.gradients(of: arena.entry(named: parameter)!), fixture.tensor("parameter_grads", parameter),
                        absolute: absolute, relative: relative, "\(name) d/d\(parameter)", file: file, line: line)
        }
    }

    func testLinear() throws {
        try check("linear", inputs: ["x"]) { arena in let fc = Linear(arena, "fc", 5, 3); return { fc($0[0]) } }
        try check("linear_tokens", inputs: ["x"]) { arena in let fc = Linear(arena, "fc", 6, 4); return { fc($0[0]) } }
    }

    func testConv2d() throws {
        try check("conv2d", inputs: ["x"]) { arena in
            let conv = Conv2d(arena, "conv", 4, 6, kernel: 3, stride: 2, padding: 1, groups: 2)
            return { conv($0[0]) }
        }
        try check("conv2d_same", inputs: ["x"]) { arena in
            let conv = Conv2d(arena, "conv", 3, 5, kernel: 3, padding: 1)
            return { conv($0[0]) }
        }
    }

    func testNormalizations() throws {
        try check("groupnorm", inputs: ["x"]) { arena in let n = GroupNorm(arena, "norm", groups: 2, channels: 4); return { n($0[0]) } }
        try check("layernorm", inputs: ["x"]) { arena in let n = LayerNorm(arena, "norm", 6); return { n($0[0]) } }
    }

    func testBatchNormTrainingStatisticsAndEvaluation() throws {
        var layer: BatchNorm1d!
        try check("batchnorm1d", inputs: ["x"]) { arena in
            layer = BatchNorm1d(arena, "norm", 5)
            return { layer($0[0]) }
        }
        let fixture = try Fixture("batchnorm1d")
        assertClose(layer.runningMean.value, fixture.tensor("running_mean"), "running mean")
        assertClose(layer.runningVariance.value, fixture.tensor("running_var"), "running variance (unbiased)")
        layer.isTraining = false
        let y = GradMode.withoutGradients { layer(Variable(fixture.tensor("eval_input"))) }
        assertClose(y.value, fixture.tensor("eval_output"), "evaluation uses running statistics")

        // One row in training has no statistics of its own (PyTorch raises): it is normalised as
        // in evaluation, and the running statistics stay as they are.
        layer.isTraining = true
        let row = Variable(Tensor(shape: [1, 5], values: Array(fixture.tensor("eval_input").scalars.prefix(5))))
        let mean = layer.runningMean.value.scalars, variance = layer.runningVariance.value.scalars
        let single = GradMode.withoutGradients { layer(row) }
        layer.isTraining = false
        assertClose(single.value, GradMode.withoutGradients { layer(row) }.value, "a one-row batch uses the running statistics")
        XCTAssertEqual(layer.runningMean.value.scalars, mean)
        XCTAssertEqual(layer.runningVariance.value.scalars, variance)
    }

    func testEmbedding() throws {
        let fixture = try Fixture("embedding")
        let indices = fixture.tensor("inputs", "indices").scalars.map { Int($0) }
        try check("embedding", inputs: []) { arena in let e = Embedding(arena, "emb", count: 10, dim: 4); return { _ in e(indices) } }
    }

    func testAttention() throws {
        try check("self_attention", inputs: ["x"]) { arena in
            let attention = MultiHeadAttention(arena, "attn", dim: 8, heads: 2)
            return { attention($0[0]) }
        }
        try check("cross_attention", inputs: ["x", "context"]) { arena in
            let attention = MultiHeadAttention(arena, "attn", dim: 8, heads: 2, contextDim: 6)
            return { attention($0[0], context: $0[1]) }
        }
    }

    func testMaskedAttentionWithAFullyMaskedSample() throws {
        let keyMask = try Fixture("masked_attention").value("key_mask") as! [[Bool]]
        try check("masked_attention", inputs: ["x", "context"]) { arena in
            let attention = MultiHeadAttention(arena, "attn", dim: 8, heads: 2, contextDim: 6)
            return { attention($0[0], context: $0[1], keyMask: keyMask) }
        }
    }

    func testSegmentPooling() throws {
        let offsets = try Fixture("segment_softmax").value("offsets") as! [Int]
        XCTAssertEqual(offsets, try Fixture("segment_weighted_sum").value("offsets") as! [Int])
        try check("segment_softmax", inputs: ["x"]) { _ in { $0[0].segmentSoftmax(offsets: offsets) } }
        try check("segment_weighted_sum", inputs: ["weights", "values"]) { _ in
            { segmentWeightedSum(weights: $0[0], values: $0[1], offsets: offsets) }
        }
    }

    func testUpsampleBilinear() throws {
        for name in ["upsample_bilinear", "upsample_bilinear_x3"] {
            let factor = try Fixture(name).value("factor") as! Int
            try check(name, inputs: ["x"]) { _ in { $0[0].upsampleBilinear(factor) } }
        }
    }

    func testActivations() throws {
        let cases: [(String, (Variable) -> Variable)] = [
            ("relu", { $0.relu() }), ("leaky_relu", { $0.leakyReLU(0.2) }), ("silu", { $0.silu() }),
            ("gelu", { $0.gelu() }), ("tanh", { $0.tanh() }), ("sigmoid", { $0.sigmoid() }), ("softplus", { $0.softplus() }),
        ]
        for (name, f) in cases {
            try check("activation_" + name, inputs: ["x"]) { _ in { f($0[0]) } }
        }
    }

    func testLosses() throws {
        let mse = try Fixture("mse"), bce = try Fixture("bce_with_logits"), ce = try Fixture("cross_entropy"), cox = try Fixture("cox")
        try check("mse", inputs: ["x"]) { _ in { Loss.meanSquaredError($0[0], Variable(mse.tensor("target"))) } }
        try check("bce_with_logits", inputs: ["x"]) { _ in { Loss.binaryCrossEntropyWithLogits($0[0], bce.tensor("target")) } }
        try check("cross_entropy", inputs: ["x"]) { _ in { Loss.crossEntropy($0[0], labels: ce.value("labels") as! [Int]) } }
        try check("gaussian_kl", inputs: ["mu", "logvar"]) { _ in { Loss.gaussianKL(mean: $0[0], logVariance: $0[1]) } }
        let times = cox.value("times") as! [Double], events = (cox.value("events") as! [Int]).map { $0 == 1 }
        try check("cox", inputs: ["risk"]) { _ in { Loss.coxPartialLikelihood(risk: $0[0], times: times, events: events) } }
    }

    func testTimestepEmbedding() throws {
        let fixture = try Fixture("timestep_embedding")
        assertClose(timestepEmbedding(fixture.value("timesteps") as! [Double], dim: 8), fixture.tensor("output"), absolute: 1e-6)
    }
}
