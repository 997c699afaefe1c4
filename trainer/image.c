#include "image.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
/* after stdio.h: jpeglib.h uses FILE */
#include <jpeglib.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define DEFAULT_MAX_PIXELS ((uint64_t) 1 << 28)

void image_free (image *img) {
  free (img->data);
  memset (img, 0, sizeof *img);
}

bool image_format_from_name (const char *path, image_format *format) {
  const char *dot = strrchr (path, '.');
  if (!dot)
    return false;
  if (strcasecmp (dot, ".png") == 0)
    *format = IMAGE_PNG;
  else if (strcasecmp (dot, ".jpg") == 0 || strcasecmp (dot, ".jpeg") == 0)
    *format = IMAGE_JPEG;
  else
    return false;
  return true;
}

/* ---- PNG -------------------------------------------------------------------------------------- */

typedef struct png_err {
  jmp_buf jmp;
  char msg[200];
} png_err;

static void on_png_error (png_structp png, png_const_charp msg) {
  png_err *e = png_get_error_ptr (png);
  snprintf (e->msg, sizeof e->msg, "%s", msg);
  longjmp (e->jmp, 1);
}

static void on_png_warning (png_structp png, png_const_charp msg) {
  (void) png;
  (void) msg;
}

static bool load_png (FILE *f, const char *path, image *img, uint64_t max_pixels, char *err, size_t errlen) {
  png_err e = { .msg = "" };
  png_structp png = png_create_read_struct (PNG_LIBPNG_VER_STRING, &e, on_png_error, on_png_warning);
  png_infop info = png ? png_create_info_struct (png) : NULL;
  /* volatile: modified between setjmp and a possible longjmp */
  float *volatile data = NULL;
  png_bytep volatile row = NULL;
  if (!info) {
    png_destroy_read_struct (&png, NULL, NULL);
    snprintf (err, errlen, "%s: out of memory", path);
    return false;
  }
  if (setjmp (e.jmp)) {
    png_destroy_read_struct (&png, &info, NULL);
    free (data);
    free (row);
    snprintf (err, errlen, "%s: corrupt PNG (%s)", path, e.msg);
    return false;
  }
  png_init_io (png, f);
  png_set_user_limits (png, 1u << 20, 1u << 20);
  png_read_info (png, info);
  png_uint_32 w = png_get_image_width (png, info), h = png_get_image_height (png, info);
  int depth = png_get_bit_depth (png, info), type = png_get_color_type (png, info);
  if ((uint64_t) w * h > max_pixels) {
    png_destroy_read_struct (&png, &info, NULL);
    snprintf (err, errlen, "%s: %ux%u pixels is more than the limit of %llu", path, (unsigned) w, (unsigned) h,
              (unsigned long long) max_pixels);
    return false;
  }
  if (type == PNG_COLOR_TYPE_PALETTE)
    png_set_palette_to_rgb (png);
  if (type == PNG_COLOR_TYPE_GRAY && depth < 8)
    png_set_expand_gray_1_2_4_to_8 (png);
  if (png_get_valid (png, info, PNG_INFO_tRNS))
    png_set_tRNS_to_alpha (png);
  if (depth == 16)
    png_set_swap (png); /* host order on little-endian hosts, read below as uint16 */
  png_set_interlace_handling (png);
  png_read_update_info (png, info);
  int channels = png_get_channels (png, info);
  int out_depth = png_get_bit_depth (png, info);
  size_t rowbytes = png_get_rowbytes (png, info);
  data = malloc ((size_t) w * h * (size_t) channels * sizeof (float));
  /* Interlaced images need the whole image; read it at once into rows. */
  png_bytep all = malloc (rowbytes * h);
  png_bytep *rows = malloc (h * sizeof *rows);
  row = all;
  if (!data || !all || !rows) {
    free (rows);
    png_destroy_read_struct (&png, &info, NULL);
    free (data);
    free (all);
    snprintf (err, errlen, "%s: out of memory", path);
    return false;
  }
  for (png_uint_32 y = 0; y < h; y++)
    rows[y] = all + y * rowbytes;
  png_read_image (png, rows);
  png_read_end (png, NULL);
  free (rows);
  for (png_uint_32 y = 0; y < h; y++) {
    for (size_t i = 0; i < (size_t) w * channels; i++) {
      float v;
      if (out_depth == 16) {
        uint16_t s;
        memcpy (&s, all + y * rowbytes + 2 * i, 2);
        v = s / 65535.0f;
      } else {
        v = all[y * rowbytes + i] / 255.0f;
      }
      data[(size_t) y * w * channels + i] = v;
    }
  }
  free (all);
  row = NULL;
  png_destroy_read_struct (&png, &info, NULL);
  img->width = (int32_t) w;
  img->height = (int32_t) h;
  img->channels = channels;
  img->bit_depth = out_depth == 16 ? 16 : 8;
  img->data = data;
  return true;
}

static bool save_png (FILE *f, const char *path, const image *img, int32_t bit_depth, char *err, size_t errlen) {
  png_err e = { .msg = "" };
  png_structp png = png_create_write_struct (PNG_LIBPNG_VER_STRING, &e, on_png_error, on_png_warning);
  png_infop info = png ? png_create_info_struct (png) : NULL;
  png_bytep volatile row = NULL;
  if (!info) {
    png_destroy_write_struct (&png, NULL);
    snprintf (err, errlen, "%s: out of memory", path);
    return false;
  }
  if (setjmp (e.jmp)) {
    png_destroy_write_struct (&png, &info);
    free (row);
    snprintf (err, errlen, "%s: cannot write PNG (%s)", path, e.msg);
    return false;
  }
  static const int types[5] = { 0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGBA };
  png_init_io (png, f);
  png_set_IHDR (png, info, (png_uint_32) img->width, (png_uint_32) img->height, bit_depth, types[img->channels],
                PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info (png, info);
  if (bit_depth == 16)
    png_set_swap (png);
  size_t n = (size_t) img->width * img->channels;
  row = malloc (n * (bit_depth == 16 ? 2 : 1));
  if (!row)
    on_png_error (png, "out of memory");
  for (int32_t y = 0; y < img->height; y++) {
    const float *src = img->data + (size_t) y * n;
    for (size_t i = 0; i < n; i++) {
      float v = src[i] < 0 ? 0 : src[i] > 1 ? 1 : src[i];
      if (bit_depth == 16) {
        uint16_t s = (uint16_t) lrintf (v * 65535.0f);
        memcpy (row + 2 * i, &s, 2);
      } else {
        row[i] = (png_byte) lrintf (v * 255.0f);
      }
    }
    png_write_row (png, row);
  }
  png_write_end (png, NULL);
  free (row);
  png_destroy_write_struct (&png, &info);
  return true;
}

/* ---- JPEG ------------------------------------------------------------------------------------- */

typedef struct jpeg_err {
  struct jpeg_error_mgr mgr;
  jmp_buf jmp;
  char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void on_jpeg_error (j_common_ptr cinfo) {
  jpeg_err *e = (jpeg_err *) cinfo->err;
  (*cinfo->err->format_message) (cinfo, e->msg);
  longjmp (e->jmp, 1);
}

static void on_jpeg_message (j_common_ptr cinfo) {
  (void) cinfo;
}

static bool load_jpeg (FILE *f, const char *path, image *img, uint64_t max_pixels, char *err, size_t errlen) {
  struct jpeg_decompress_struct cinfo;
  jpeg_err e;
  cinfo.err = jpeg_std_error (&e.mgr);
  e.mgr.error_exit = on_jpeg_error;
  e.mgr.output_message = on_jpeg_message;
  float *volatile data = NULL;
  JSAMPLE *volatile row = NULL;
  if (setjmp (e.jmp)) {
    jpeg_destroy_decompress (&cinfo);
    free (data);
    free (row);
    snprintf (err, errlen, "%s: corrupt JPEG (%s)", path, e.msg);
    return false;
  }
  jpeg_create_decompress (&cinfo);
  jpeg_stdio_src (&cinfo, f);
  jpeg_read_header (&cinfo, TRUE);
  if ((uint64_t) cinfo.image_width * cinfo.image_height > max_pixels) {
    snprintf (err, errlen, "%s: %ux%u pixels is more than the limit of %llu", path, cinfo.image_width,
              cinfo.image_height, (unsigned long long) max_pixels);
    jpeg_destroy_decompress (&cinfo);
    return false;
  }
  cinfo.out_color_space = cinfo.jpeg_color_space == JCS_GRAYSCALE ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress (&cinfo);
  int ch = cinfo.output_components;
  size_t w = cinfo.output_width, h = cinfo.output_height;
  data = malloc (w * h * (size_t) ch * sizeof (float));
  row = malloc (w * (size_t) ch);
  if (!data || !row) {
    snprintf (e.msg, sizeof e.msg, "out of memory");
    longjmp (e.jmp, 1);
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW rp = row;
    size_t y = cinfo.output_scanline;
    jpeg_read_scanlines (&cinfo, &rp, 1);
    for (size_t i = 0; i < w * (size_t) ch; i++)
      data[y * w * (size_t) ch + i] = row[i] / 255.0f;
  }
  jpeg_finish_decompress (&cinfo);
  jpeg_destroy_decompress (&cinfo);
  free (row);
  img->width = (int32_t) w;
  img->height = (int32_t) h;
  img->channels = ch;
  img->bit_depth = 8;
  img->data = data;
  return true;
}

static bool save_jpeg (FILE *f, const char *path, const image *img, int32_t quality, char *err, size_t errlen) {
  struct jpeg_compress_struct cinfo;
  jpeg_err e;
  cinfo.err = jpeg_std_error (&e.mgr);
  e.mgr.error_exit = on_jpeg_error;
  e.mgr.output_message = on_jpeg_message;
  JSAMPLE *volatile row = NULL;
  if (setjmp (e.jmp)) {
    jpeg_destroy_compress (&cinfo);
    free (row);
    snprintf (err, errlen, "%s: cannot write JPEG (%s)", path, e.msg);
    return false;
  }
  jpeg_create_compress (&cinfo);
  jpeg_stdio_dest (&cinfo, f);
  bool gray = img->channels <= 2;
  cinfo.image_width = (JDIMENSION) img->width;
  cinfo.image_height = (JDIMENSION) img->height;
  cinfo.input_components = gray ? 1 : 3;
  cinfo.in_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults (&cinfo);
  jpeg_set_quality (&cinfo, quality, TRUE);
  jpeg_start_compress (&cinfo, TRUE);
  int out_ch = gray ? 1 : 3;
  row = malloc ((size_t) img->width * out_ch);
  if (!row) {
    snprintf (e.msg, sizeof e.msg, "out of memory");
    longjmp (e.jmp, 1);
  }
  for (int32_t y = 0; y < img->height; y++) {
    for (int32_t x = 0; x < img->width; x++)
      for (int c = 0; c < out_ch; c++) {
        float v = img->data[((size_t) y * img->width + x) * img->channels + c];
        row[x * out_ch + c] = (JSAMPLE) lrintf ((v < 0 ? 0 : v > 1 ? 1 : v) * 255.0f);
      }
    JSAMPROW rp = row;
    jpeg_write_scanlines (&cinfo, &rp, 1);
  }
  jpeg_finish_compress (&cinfo);
  jpeg_destroy_compress (&cinfo);
  free (row);
  return true;
}

/* ---- entry points ----------------------------------------------------------------------------- */

bool image_load (const char *path, image *img, uint64_t max_pixels, char *err, size_t errlen) {
  memset (img, 0, sizeof *img);
  if (!max_pixels)
    max_pixels = DEFAULT_MAX_PIXELS;
  FILE *f = fopen (path, "rb");
  if (!f) {
    snprintf (err, errlen, "cannot open '%s': %s", path, strerror (errno));
    return false;
  }
  unsigned char magic[8] = { 0 };
  size_t n = fread (magic, 1, 8, f);
  rewind (f);
  bool ok;
  if (n == 8 && png_sig_cmp (magic, 0, 8) == 0) {
    ok = load_png (f, path, img, max_pixels, err, errlen);
  } else if (n >= 3 && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF) {
    ok = load_jpeg (f, path, img, max_pixels, err, errlen);
  } else {
    snprintf (err, errlen, "%s: not a PNG or JPEG file", path);
    ok = false;
  }
  fclose (f);
  return ok;
}

bool image_save (const char *path, const image *img, image_format format, int32_t bit_depth, int32_t quality, char *err,
                 size_t errlen) {
  size_t plen = strlen (path);
  char *tmp = malloc (plen + 32);
  if (!tmp) {
    snprintf (err, errlen, "out of memory");
    return false;
  }
  snprintf (tmp, plen + 32, "%s.tmp-%ld", path, (long) getpid ());
  FILE *f = fopen (tmp, "wb");
  if (!f) {
    snprintf (err, errlen, "cannot write '%s': %s", path, strerror (errno));
    free (tmp);
    return false;
  }
  bool ok = format == IMAGE_PNG ? save_png (f, path, img, bit_depth == 16 ? 16 : 8, err, errlen)
                                : save_jpeg (f, path, img, quality > 0 && quality <= 100 ? quality : 95, err, errlen);
  if (fflush (f) != 0 || ferror (f)) {
    if (ok)
      snprintf (err, errlen, "cannot write '%s': %s", path, strerror (errno));
    ok = false;
  }
  if (fclose (f) != 0 && ok) {
    snprintf (err, errlen, "cannot write '%s': %s", path, strerror (errno));
    ok = false;
  }
  if (ok && rename (tmp, path) != 0) {
    snprintf (err, errlen, "cannot write '%s': %s", path, strerror (errno));
    ok = false;
  }
  if (!ok)
    unlink (tmp);
  free (tmp);
  return ok;
}
