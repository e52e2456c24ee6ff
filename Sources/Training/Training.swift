// Training: run config, the data-parallel step, trainer loop, metrics and progress.
// Filled by the runtime issue; see Docs/Architecture.md.
