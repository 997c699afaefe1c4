/* CelGAN GIMP plug-in: the stylized selection, computed once and shared by the preview and the apply
 *
 * This program is free software: you can redistribute it and/or modify
 * it under the terms of the GNU General Public License as published by
 * the Free Software Foundation; either version 3 of the License, or
 * (at your option) any later version.
 */

#ifndef __CELGAN_STYLIZE_H__
#define __CELGAN_STYLIZE_H__

#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>

#include "celgan.h"

#include "celgan-models.h"


/* The values of one run, read from the config. */
typedef struct
{
  gchar        *model_path;
  gdouble       strength;
  gboolean      keep_colors;
  GFile        *reference;
  GimpDrawable *reference_layer;
  gint          tile_size;
  gchar        *device;
} CelganParams;

/* What lives between preview updates and the final apply. */
typedef struct
{
  GimpDrawable        *drawable;
  GimpProcedureConfig *config;
  GPtrArray           *models;        /* CelganModelFile */
  GeglBuffer          *buffer;        /* the drawable's pixels */
  const Babl          *format;        /* "R'G'B'A float" or "Y'A float" */
  gint                 channels;      /* 4 or 2 */
  gint                 x, y, width, height;  /* the area filtered: the selection bounds, or the
                                              * whole drawable for scale models */
  gint                 sel_x, sel_y, sel_width, sel_height;  /* the selection bounds */
  gfloat              *original;      /* the area's pixels */

  cel_context         *context;
  gchar               *context_device;
  cel_model           *model;
  gchar               *model_path;
  cel_stylizer        *stylizer;

  gchar               *reference_key;
  gfloat              *reference;     /* RGB floats */
  gint                 reference_width, reference_height;

  gchar               *stylized_key;  /* what `stylized` was computed from */
  gfloat              *stylized;      /* the network's output on the area */
  gint                 scale;         /* of `stylized`: (width * scale) x (height * scale) pixels */
  gboolean             reference_note_given;
  gboolean             scale_note_given;
  gboolean             interactive;   /* in the dialog: no message for an ignored reference */

  GtkWidget           *info_label;
  GtkWidget           *status_label;
} CelganState;


/* Reads the selection bounds of `drawable` and their pixels; FALSE when nothing of it is selected.
 * state->original is NULL when out of memory. Clear the state with celgan_state_clear in any case. */
gboolean   celgan_state_init  (CelganState          *state,
                               GimpDrawable         *drawable,
                               GimpProcedureConfig  *config);
void       celgan_state_clear (CelganState          *state);

/* The values of the config, the model resolved to a path. */
gboolean   celgan_params_get   (CelganState          *state,
                                CelganParams         *params,
                                GError              **error);
void       celgan_params_clear (CelganParams         *params);

/* Loads the model and opens the device (each kept while it does not change). */
gboolean   celgan_prepare      (CelganState          *state,
                                CelganParams         *params,
                                GError              **error);

/* state->stylized: the network's output on the selection bounds (for models that scale the image, on the
 * whole drawable), computed when the model, device, tile size or reference changed since the last call.
 * Progress goes to GIMP's progress bar. */
gboolean   celgan_stylize      (CelganState          *state,
                                CelganParams         *params,
                                GError              **error);

/* A GError with a sentence for the status, then the library's detail. */
/* The strength left for the pixel blend (cel_postprocess) after celgan_stylize: 1 for models that blend in
 * feature space (they took the strength inside the network), else the chosen strength. */
gdouble    celgan_pixel_strength (CelganState        *state,
                                  const CelganParams *params);

void       celgan_set_error    (GError              **error,
                                cel_status            status,
                                const gchar          *detail);

#endif /* __CELGAN_STYLIZE_H__ */
