// O_DIRECT is a GNU extension that Swift's Glibc module does not export.
#ifndef CDIRECTIO_SHIM_H
#define CDIRECTIO_SHIM_H
#define _GNU_SOURCE 1
#include <fcntl.h>

static inline int cdirectio_o_direct(void) { return O_DIRECT; }

#endif
