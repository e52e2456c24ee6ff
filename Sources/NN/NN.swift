// NN: layers, the flat parameter arena, losses. Filled by the numerical-core issue;
// see Docs/Architecture.md.
