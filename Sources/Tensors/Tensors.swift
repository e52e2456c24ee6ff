// Tensors: Float32 tensor storage, shapes, kernels (BLAS matmul, im2col conv, elementwise,
// reductions) and the counter-based RNG. Filled by the numerical-core issue; see Docs/Architecture.md.
