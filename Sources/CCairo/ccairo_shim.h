// cairo (PNG, SVG and PDF surfaces) and Pango (text through fontconfig and HarfBuzz) for the
// Plotting module. The shim turns the macros Swift cannot import into prefixed functions.
#ifndef CCAIRO_SHIM_H
#define CCAIRO_SHIM_H
#include <cairo.h>
#include <cairo-svg.h>
#include <cairo-pdf.h>
#include <pango/pangocairo.h>

/// Pango units per device unit (PANGO_SCALE).
static inline int ccairo_pango_scale(void) { return PANGO_SCALE; }

/// Releases a Pango object (layout, context): g_object_unref behind a typed signature.
static inline void ccairo_layout_release(PangoLayout *layout) { g_object_unref(layout); }

#endif
