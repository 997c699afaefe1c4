/* Image files for the celgan command: PNG (8/16-bit, gray/RGB, alpha, palette) through libpng and JPEG
 * through libjpeg-turbo, held as interleaved float samples in [0, 1] (sRGB-encoded values, no gamma
 * conversion). */
#ifndef CELGAN_IMAGE_H
#define CELGAN_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum image_format { IMAGE_PNG, IMAGE_JPEG } image_format;

typedef struct image {
  int32_t width, height;
  int32_t channels;   /* 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA */
  int32_t bit_depth;  /* of the source file: 8 or 16 */
  float *data;        /* width * height * channels, row-major, interleaved */
} image;

/* Loads a PNG or JPEG (detected from the content). On failure writes a sentence naming the file to err
 * and returns false; *img is left empty. Images above max_pixels (0: 2^28) are refused. */
bool image_load (const char *path, image *img, uint64_t max_pixels, char *err, size_t errlen);
/* Saves as PNG (8 or 16 bits, the image's channels) or JPEG (quality 1..100; alpha is dropped, gray kept).
 * Writes to a temporary file and renames it: a failure leaves no partial output. */
bool image_save (const char *path, const image *img, image_format format, int32_t bit_depth, int32_t quality, char *err,
                 size_t errlen);
/* The format from a file name's extension (.png, .jpg, .jpeg; case-insensitive); false if neither. */
bool image_format_from_name (const char *path, image_format *format);
void image_free (image *img);

#endif
