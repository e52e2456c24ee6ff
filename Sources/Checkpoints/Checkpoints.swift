// Checkpoints: sharded zstd checkpoints (write, commit, verify, load, reshard, export).
// Filled by the checkpoints issue; see Docs/Architecture.md.
