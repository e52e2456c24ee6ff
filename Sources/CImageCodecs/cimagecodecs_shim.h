// libpng's simplified API and TurboJPEG: neither needs setjmp error handling. The shim turns
// libpng's version and format macros into functions.
#ifndef CIMAGECODECS_SHIM_H
#define CIMAGECODECS_SHIM_H
#include <png.h>
#include <turbojpeg.h>
#include <string.h>

/// A zeroed png_image of the current version, as the simplified API requires.
static inline png_image cimagecodecs_png_image(void) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    return image;
}
static inline png_uint_32 cimagecodecs_png_format_rgb(void) { return PNG_FORMAT_RGB; }
static inline int cimagecodecs_png_failed(const png_image *image) { return PNG_IMAGE_FAILED(*image); }

#endif
