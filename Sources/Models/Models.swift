// Models: the β-VAE, diffusion UNets, survival and expression models, each with a Codable
// config. Filled by the model issues; see Docs/Architecture.md.
