// Autograd: the reverse-mode tape, one backward rule beside each forward op.
// Filled by the numerical-core issue; see Docs/Architecture.md.
