// OpenSlide's property names are macros; the shim names the ones the slide tiler reads.
#ifndef COPENSLIDE_SHIM_H
#define COPENSLIDE_SHIM_H
#include <openslide.h>

static inline const char *copenslide_property_objective_power(void) { return OPENSLIDE_PROPERTY_NAME_OBJECTIVE_POWER; }
static inline const char *copenslide_property_mpp_x(void) { return OPENSLIDE_PROPERTY_NAME_MPP_X; }

#endif
