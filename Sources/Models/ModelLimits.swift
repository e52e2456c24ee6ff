/// The widest layer a model config may ask for (2¹⁶ units). A bound that no real model reaches
/// (the β-VAE's widest layer has 6,000) but that keeps a typo from asking for terabytes, and every
/// matrix dimension inside BLAS's 32-bit integers.
public let maxWidth = 1 << 16
