// Optim: SGD, Adam/AdamW, schedules, clipping and EMA over flat buffers.
// Filled by the numerical-core issue; see Docs/Architecture.md.
