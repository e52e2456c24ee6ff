// Cohorts: the HDF5 cohort format, simulator, importers, validation, sampler and loader.
// Filled by the cohorts issue; see Docs/Architecture.md.
