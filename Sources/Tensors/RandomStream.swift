/// Every Philox stream of DESIGN §5 in one place, so that no two uses of randomness share
/// numbers. A stream says what the numbers are for; a key's step and sample say where they belong.
public enum RandomStream {
    /// The key of a training step's micro-batch (step, the first sample's global position): tasks
    /// derive their own streams (dropout, noise, augmentation) from it.
    public static let step: UInt32 = 0
    public static let initialization: UInt32 = 1
    public static let dropout: UInt32 = 2
    /// The ε of a VAE's reparameterisation z = μ + σ·ε.
    public static let latentNoise: UInt32 = 3
    /// A tile's flips and 90° rotations, per sample.
    public static let augmentation: UInt32 = 4
    /// Which tiles of a bag larger than the cap an epoch uses, per patient.
    public static let bagSubsample: UInt32 = 5
    /// The synthetic inputs of the benchmarks' reference models.
    public static let syntheticInputs: UInt32 = 6
    /// A diffusion sample's timestep, conditioning drop and low-resolution noise level (uniforms).
    public static let diffusionDraws: UInt32 = 7
    /// The ε a diffusion sample is noised with in training, and a sampler's starting noise.
    public static let diffusionNoise: UInt32 = 8
    /// The noise that augments a super-resolution stage's low-resolution input.
    public static let lowResolutionNoise: UInt32 = 9
    /// The fresh noise of each ancestral (DDPM) sampling step, per tile and step.
    public static let samplingNoise: UInt32 = 10
    /// The patient split, per cancer type (`DataSplit`).
    public static let split: UInt32 = 0x5971
    /// The order of an epoch's samples (`EpochSampler`).
    public static let epochOrder: UInt32 = 0x0DE7

    /// The simulator's streams, keyed by the simulation's own seed (not a run's).
    public enum Simulation: UInt32 { case signature = 1, program, fractions, expression, tiles, survival, spots }
}
