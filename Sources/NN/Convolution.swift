import Autograd
import Tensors

/// 2-D convolution over [B, C, H, W] with stride, padding and groups; PyTorch's layout
/// (W [O, C/groups, k, k]) and default initialisation (U(−1/√fanIn, 1/√fanIn)).
public final class Conv2d: Module {
    public let geometry: Conv2dGeometry
    public let weight: Parameter
    public let bias: Parameter?

    public init(
        _ arena: ParameterArena, _ name: String, _ inChannels: Int, _ outChannels: Int, kernel: Int,
        stride: Int = 1, padding: Int = 0, groups: Int = 1, bias: Bool = true
    ) {
        geometry = Conv2dGeometry(inChannels: inChannels, outChannels: outChannels, kernel: kernel,
                                  stride: stride, padding: padding, groups: groups)
        let bound = 1 / Double(inChannels / groups * kernel * kernel).squareRoot()
        weight = arena.declare("\(name).weight", shape: geometry.weightShape, initializer: .uniform(bound: bound))
        self.bias = bias ? arena.declare("\(name).bias", shape: [outChannels], initializer: .uniform(bound: bound)) : nil
    }

    public func callAsFunction(_ x: Variable) -> Variable {
        x.conv2d(weight.variable, bias: bias?.variable, geometry)
    }
}
