/* CelGAN GIMP plug-in: the stylized selection, computed once and shared by the preview and the apply
 *
 * The models normalize over the whole image, so a pixel of the result depends on every pixel of the area
 * being filtered (the selection bounds): the network runs on the whole area, and its output is kept until
 * the model, the device, the tile size or the reference change.
 *
 * This program is free software: you can redistribute it and/or modify
 * it under the terms of the GNU General Public License as published by
 * the Free Software Foundation; either version 3 of the License, or
 * (at your option) any later version.
 */

#include <string.h>

#include <glib/gi18n-lib.h>

#include "celgan-stylize.h"


/*  Parameters and device  */

gboolean
celgan_params_get (CelganState   *state,
                   CelganParams  *params,
                   GError       **error)
{
  gchar *model  = NULL;
  GFile *file   = NULL;

  memset (params, 0, sizeof *params);
  g_object_get (state->config,
                "model",           &model,
                "model-file",      &file,
                "strength",        &params->strength,
                "keep-colors",     &params->keep_colors,
                "reference",       &params->reference,
                "reference-layer", &params->reference_layer,
                "tile-size",       &params->tile_size,
                "device",          &params->device,
                NULL);

  if (g_strcmp0 (model, CELGAN_MODEL_FILE_CHOICE) == 0)
    {
      if (file)
        params->model_path = g_file_get_path (file);

      if (! params->model_path)
        g_set_error (error, GIMP_PLUG_IN_ERROR, 0,
                     _("No model file is chosen: choose a model, or a "
                       ".safetensors file in 'model-file'."));
    }
  else
    {
      CelganModelFile *entry = celgan_models_lookup (state->models, model);

      if (entry)
        params->model_path = g_strdup (entry->path);
      else
        g_set_error (error, GIMP_PLUG_IN_ERROR, 0,
                     _("There is no model '%s' in the model folders."), model);
    }

  g_free (model);
  g_clear_object (&file);

  return params->model_path != NULL;
}

void
celgan_params_clear (CelganParams *params)
{
  g_free (params->model_path);
  g_free (params->device);
  g_clear_object (&params->reference);
  g_clear_object (&params->reference_layer);
}

void
celgan_set_error (GError      **error,
                  cel_status    status,
                  const gchar  *detail)
{
  const gchar *what;

  switch (status)
    {
    case CEL_ERROR_NO_DEVICE:
      what = _("No usable Vulkan device was found.");
      break;
    case CEL_ERROR_OUT_OF_DEVICE_MEMORY:
      what = _("The device ran out of memory, even with the smallest tiles.");
      break;
    case CEL_ERROR_OUT_OF_HOST_MEMORY:
      what = _("Out of memory.");
      break;
    case CEL_ERROR_DEVICE_LOST:
      what = _("The Vulkan device was lost (driver reset or crash).");
      break;
    case CEL_ERROR_IO:
    case CEL_ERROR_FORMAT:
      what = _("The model file cannot be used.");
      break;
    case CEL_ERROR_UNSUPPORTED:
      what = _("The Vulkan device lacks a feature CelGAN needs.");
      break;
    default:
      what = _("Stylizing failed.");
      break;
    }

  g_set_error (error, GIMP_PLUG_IN_ERROR, 0, "%s\n%s", what, detail);
}

/* The context (one per device string) and the model, each kept while it does not change. */
gboolean
celgan_prepare (CelganState   *state,
                CelganParams  *params,
                GError       **error)
{
  cel_status status;
  gchar      err[1024] = "";

  if (! state->model || g_strcmp0 (state->model_path, params->model_path) != 0)
    {
      cel_model *model = NULL;

      g_clear_pointer (&state->stylizer, cel_stylizer_destroy);
      g_clear_pointer (&state->model, cel_model_free);
      g_clear_pointer (&state->model_path, g_free);

      status = cel_model_load (params->model_path, &model, err, sizeof err);
      if (status != CEL_OK)
        {
          g_set_error (error, GIMP_PLUG_IN_ERROR, 0,
                       _("The model '%s' cannot be used:\n%s"),
                       params->model_path, err);
          return FALSE;
        }

      state->model      = model;
      state->model_path = g_strdup (params->model_path);
    }

  if (! state->context || g_strcmp0 (state->context_device, params->device) != 0)
    {
      cel_context_options options = { 0 };
      cel_context        *context = NULL;

      g_clear_pointer (&state->stylizer, cel_stylizer_destroy);
      g_clear_pointer (&state->context, cel_context_destroy);
      g_clear_pointer (&state->context_device, g_free);

      options.device = params->device;
      status = cel_context_create (&options, &context);
      if (status != CEL_OK)
        {
          celgan_set_error (error, status,
                            context ? cel_context_last_error (context) : "");
          cel_context_destroy (context);
          return FALSE;
        }

      state->context        = context;
      state->context_device = g_strdup (params->device);
    }

  if (! state->stylizer)
    {
      status = cel_stylizer_create (state->context, state->model, &state->stylizer);
      if (status != CEL_OK)
        {
          celgan_set_error (error, status, cel_context_last_error (state->context));
          state->stylizer = NULL;
          return FALSE;
        }
    }

  return TRUE;
}


/*  Reference image  */

static gboolean
celgan_read_reference (CelganState   *state,
                       CelganParams  *params,
                       GError       **error)
{
  GimpImage    *image    = NULL;
  GimpDrawable *drawable = params->reference_layer;
  GeglBuffer   *buffer;
  gchar        *key;

  if (drawable)
    key = g_strdup_printf ("layer:%d", gimp_item_get_id (GIMP_ITEM (drawable)));
  else if (params->reference)
    key = g_file_get_uri (params->reference);
  else
    key = NULL;

  if (g_strcmp0 (key, state->reference_key) == 0)
    {
      g_free (key);
      return TRUE;
    }

  g_clear_pointer (&state->reference, g_free);
  g_clear_pointer (&state->reference_key, g_free);

  if (! key)
    return TRUE;

  if (! drawable)
    {
      image = gimp_file_load (GIMP_RUN_NONINTERACTIVE, params->reference);
      if (! image)
        {
          g_set_error (error, GIMP_PLUG_IN_ERROR, 0,
                       _("The reference image '%s' cannot be opened."),
                       gimp_file_get_utf8_name (params->reference));
          g_free (key);
          return FALSE;
        }
      drawable = GIMP_DRAWABLE (gimp_image_merge_visible_layers (image,
                                                                 GIMP_CLIP_TO_IMAGE));
    }

  state->reference_width  = gimp_drawable_get_width (drawable);
  state->reference_height = gimp_drawable_get_height (drawable);
  state->reference        = g_new (gfloat, (gsize) state->reference_width *
                                           state->reference_height * 3);

  buffer = gimp_drawable_get_buffer (drawable);
  gegl_buffer_get (buffer,
                   GEGL_RECTANGLE (0, 0,
                                   state->reference_width, state->reference_height),
                   1.0, babl_format ("R'G'B' float"), state->reference,
                   GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
  g_object_unref (buffer);

  if (image)
    gimp_image_delete (image);

  state->reference_key = key;

  return TRUE;
}


static gboolean celgan_state_set_area (CelganState *state,
                                       gboolean     whole);

/*  Stylizing  */

static gint
celgan_progress (void   *user,
                 double  fraction)
{
  gimp_progress_update (fraction);

  return 0;
}

/* The network's output for the whole selection bounds, computed once per model, device, tile size and
 * reference. */
gboolean
celgan_stylize (CelganState   *state,
                CelganParams  *params,
                GError       **error)
{
  const cel_model_info *info;
  cel_stylize_options   options = { 0 };
  cel_stylize_report    report  = { 0 };
  cel_status            status;
  gchar                *key;
  gfloat               *out;
  gint64                start;

  if (! celgan_prepare (state, params, error))
    return FALSE;

  info = cel_model_get_info (state->model);

  if (info->needs_reference)
    {
      if (! celgan_read_reference (state, params, error))
        return FALSE;

      if (! state->reference)
        {
          g_set_error (error, GIMP_PLUG_IN_ERROR, 0,
                       _("The model '%s' transfers the look of a reference "
                         "image: choose a reference image or layer."),
                       info->name);
          return FALSE;
        }
    }
  else if ((params->reference || params->reference_layer) &&
           ! state->reference_note_given &&
           ! state->interactive)
    {
      g_message (_("The model '%s' is a style model: the reference image is "
                   "ignored."), info->name);
      state->reference_note_given = TRUE;
    }

  if (info->scale != 1 && (params->strength < 1.0 || params->keep_colors) &&
      ! state->scale_note_given && ! state->interactive)
    {
      g_message (_("The model '%s' scales the image by %d: strength and keep-colors "
                   "do not apply to it."), info->name, info->scale);
      state->scale_note_given = TRUE;
    }

  /* Models that blend in feature space compute the strength inside the network: it is part of what the
   * kept result depends on. */
  if (info->feature_strength)
    cel_model_set_strength (state->model, (float) params->strength);
  key = g_strdup_printf ("%s\n%s\n%d\n%s\n%.4f", params->model_path, params->device,
                         params->tile_size,
                         info->needs_reference ? state->reference_key : "",
                         info->feature_strength ? params->strength : -1.0);

  if (state->stylized && g_strcmp0 (key, state->stylized_key) == 0)
    {
      g_free (key);
      return TRUE;
    }

  g_clear_pointer (&state->stylized, g_free);
  g_clear_pointer (&state->stylized_key, g_free);

  /* A model that scales the image works on the whole drawable (a scaled part of a layer would not fit
   * the rest); other models on the selection bounds. */
  if (! celgan_state_set_area (state, info->scale != 1))
    {
      celgan_set_error (error, CEL_ERROR_OUT_OF_HOST_MEMORY, "");
      g_free (key);
      return FALSE;
    }

  out = g_try_new (gfloat, (gsize) state->width * info->scale *
                           state->height * info->scale * state->channels);
  if (! out)
    {
      celgan_set_error (error, CEL_ERROR_OUT_OF_HOST_MEMORY, "");
      g_free (key);
      return FALSE;
    }

  options.tile          = params->tile_size;
  options.progress      = celgan_progress;
  options.progress_user = state;

  gimp_progress_init (_("Anime Style (CelGAN)"));
  start = g_get_monotonic_time ();

  status = cel_stylize (state->stylizer, state->original,
                        state->width, state->height, state->channels,
                        info->needs_reference ? state->reference : NULL,
                        state->reference_width, state->reference_height, 3,
                        &options, out, &report);

  gimp_progress_update (1.0);
  gimp_progress_end ();

  if (g_getenv ("CELGAN_TIMING"))
    g_printerr ("celgan-timing: stylize %dx%d in %.1f ms (tile %d, %d tiles, "
                "%d segments)\n",
                state->width, state->height,
                (g_get_monotonic_time () - start) / 1000.0,
                report.tile, report.tiles, report.segments);

  if (status != CEL_OK)
    {
      /* A device lost leaves the context unusable: start afresh next time. */
      celgan_set_error (error, status, cel_context_last_error (state->context));
      g_clear_pointer (&state->stylizer, cel_stylizer_destroy);
      g_clear_pointer (&state->context, cel_context_destroy);
      g_clear_pointer (&state->context_device, g_free);
      g_free (out);
      g_free (key);
      return FALSE;
    }

  state->stylized     = out;
  state->stylized_key = key;
  state->scale        = info->scale;

  return TRUE;
}

/*  State  */

/* The area filtered: the whole drawable or the selection bounds; its pixels re-read when it changes. */
static gboolean
celgan_state_set_area (CelganState *state,
                       gboolean     whole)
{
  gint x = 0, y = 0;
  gint w = gimp_drawable_get_width (state->drawable);
  gint h = gimp_drawable_get_height (state->drawable);

  if (! whole)
    {
      x = state->sel_x;
      y = state->sel_y;
      w = state->sel_width;
      h = state->sel_height;
    }
  if (state->original && x == state->x && y == state->y &&
      w == state->width && h == state->height)
    return TRUE;

  g_clear_pointer (&state->original, g_free);
  state->x      = x;
  state->y      = y;
  state->width  = w;
  state->height = h;
  state->original = g_try_new (gfloat, (gsize) w * h * state->channels);
  if (! state->original)
    return FALSE;
  gegl_buffer_get (state->buffer, GEGL_RECTANGLE (x, y, w, h),
                   1.0, state->format, state->original,
                   GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);

  return TRUE;
}

gboolean
celgan_state_init (CelganState         *state,
                   GimpDrawable        *drawable,
                   GimpProcedureConfig *config)
{
  memset (state, 0, sizeof *state);

  state->drawable = drawable;
  state->config   = config;
  state->models   = celgan_models_find ();

  if (! gimp_drawable_mask_intersect (drawable, &state->sel_x, &state->sel_y,
                                      &state->sel_width, &state->sel_height))
    return FALSE;

  if (gimp_drawable_is_rgb (drawable))
    {
      state->format   = babl_format ("R'G'B'A float");
      state->channels = 4;
    }
  else
    {
      state->format   = babl_format ("Y'A float");
      state->channels = 2;
    }

  state->buffer = gimp_drawable_get_buffer (drawable);
  celgan_state_set_area (state, FALSE);

  return TRUE;
}

void
celgan_state_clear (CelganState *state)
{
  g_clear_pointer (&state->stylizer, cel_stylizer_destroy);
  g_clear_pointer (&state->model, cel_model_free);
  g_clear_pointer (&state->context, cel_context_destroy);
  g_free (state->context_device);
  g_free (state->model_path);
  g_free (state->reference_key);
  g_free (state->reference);
  g_free (state->stylized_key);
  g_free (state->stylized);
  g_free (state->original);
  g_clear_object (&state->buffer);
  g_clear_pointer (&state->models, g_ptr_array_unref);
}

gdouble
celgan_pixel_strength (CelganState        *state,
                       const CelganParams *params)
{
  const cel_model_info *info = state->model ? cel_model_get_info (state->model) : NULL;

  return info && info->feature_strength ? 1.0 : params->strength;
}
