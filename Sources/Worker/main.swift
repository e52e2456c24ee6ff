// transcriptile-worker: one data-parallel worker rank; everything it needs comes from the
// coordinator's plan. Start it with launch/train (see Docs/Running.md).
import Training

WorkerProcess.main()
