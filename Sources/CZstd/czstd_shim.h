// zstd's frame-size sentinels are macros; ZSTD_isError is a function and imports as is.
#ifndef CZSTD_SHIM_H
#define CZSTD_SHIM_H
#include <zstd.h>

static inline unsigned long long czstd_content_size_unknown(void) { return ZSTD_CONTENTSIZE_UNKNOWN; }
static inline unsigned long long czstd_content_size_error(void) { return ZSTD_CONTENTSIZE_ERROR; }

#endif
