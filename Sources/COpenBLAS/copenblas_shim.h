// CBLAS from OpenBLAS, plus its threading controls. The CBLAS enums import as they are.
#ifndef COPENBLAS_SHIM_H
#define COPENBLAS_SHIM_H
#include <cblas.h>

/// Threads OpenBLAS uses for one call (set from OPENBLAS_NUM_THREADS or openblas_set_num_threads).
static inline int copenblas_threads(void) { return openblas_get_num_threads(); }
static inline void copenblas_set_threads(int n) { openblas_set_num_threads(n); }

#endif
