/* CelGAN GIMP plug-in: Filters > Artistic > Anime Style (CelGAN)...
 *
 * Copyright (C) 2025 the CelGAN authors
 *
 * This program is free software: you can redistribute it and/or modify
 * it under the terms of the GNU General Public License as published by
 * the Free Software Foundation; either version 3 of the License, or
 * (at your option) any later version.
 *
 * This program is distributed in the hope that it will be useful,
 * but WITHOUT ANY WARRANTY; without even the implied warranty of
 * MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
 * GNU General Public License for more details.
 *
 * You should have received a copy of the GNU General Public License
 * along with this program.  If not, see <https://www.gnu.org/licenses/>.
 */

/* How the preview stays exact and fast: the models normalize over the whole image, so a pixel of the
 * result depends on every pixel of the area being filtered (the selection bounds). The network therefore
 * runs once on the whole area and its output is kept; the preview shows the kept output for its visible
 * part. Strength and keep-colors are post-operations (cel_postprocess) redone on the visible part only,
 * which is instant. The network runs again only when the model, device, tile size or reference change, and
 * for models that blend the strength in feature space when the strength changes.
 * The final apply reuses the kept output when the dialog computed it for the same values, so what the
 * preview showed is exactly what is applied.
 */

#include <string.h>

#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>
#include <glib/gi18n-lib.h>

#include "celgan-stylize.h"


#define PLUG_IN_PROC    "plug-in-celgan"
#define PLUG_IN_BINARY  "celgan"
#define PLUG_IN_ROLE    "gimp-celgan"

#define MAX_TILE_SIZE   16384


typedef struct _Celgan      Celgan;
typedef struct _CelganClass CelganClass;

struct _Celgan
{
  GimpPlugIn parent_instance;
};

struct _CelganClass
{
  GimpPlugInClass parent_class;
};


#define CELGAN_TYPE (celgan_get_type ())
#define CELGAN(obj) (G_TYPE_CHECK_INSTANCE_CAST ((obj), CELGAN_TYPE, Celgan))

GType                   celgan_get_type         (void) G_GNUC_CONST;

static GList          * celgan_query_procedures (GimpPlugIn           *plug_in);
static GimpProcedure  * celgan_create_procedure (GimpPlugIn           *plug_in,
                                                 const gchar          *name);

static GimpValueArray * celgan_run              (GimpProcedure        *procedure,
                                                 GimpRunMode           run_mode,
                                                 GimpImage            *image,
                                                 GimpDrawable        **drawables,
                                                 GimpProcedureConfig  *config,
                                                 gpointer              run_data);

static gboolean         celgan                  (CelganState          *state,
                                                 GimpPreview          *preview,
                                                 GError              **error);
static gboolean         celgan_dialog           (GimpProcedure        *procedure,
                                                 GimpProcedureConfig  *config,
                                                 CelganState          *state);


G_DEFINE_TYPE (Celgan, celgan, GIMP_TYPE_PLUG_IN)

GIMP_MAIN (CELGAN_TYPE)


static void
celgan_class_init (CelganClass *klass)
{
  GimpPlugInClass *plug_in_class = GIMP_PLUG_IN_CLASS (klass);

  plug_in_class->query_procedures = celgan_query_procedures;
  plug_in_class->create_procedure = celgan_create_procedure;
}

static void
celgan_init (Celgan *celgan)
{
}

static GList *
celgan_query_procedures (GimpPlugIn *plug_in)
{
  return g_list_append (NULL, g_strdup (PLUG_IN_PROC));
}

static GimpProcedure *
celgan_create_procedure (GimpPlugIn  *plug_in,
                         const gchar *name)
{
  GimpProcedure *procedure = NULL;
  GimpChoice    *choice;
  GPtrArray     *models;
  const gchar   *default_model = CELGAN_MODEL_FILE_CHOICE;
  guint          i;

  if (strcmp (name, PLUG_IN_PROC) != 0)
    return NULL;

  procedure = gimp_image_procedure_new (plug_in, name,
                                        GIMP_PDB_PROC_TYPE_PLUGIN,
                                        celgan_run, NULL, NULL);

  gimp_procedure_set_image_types (procedure, "RGB*, GRAY*");
  gimp_procedure_set_sensitivity_mask (procedure,
                                       GIMP_PROCEDURE_SENSITIVE_DRAWABLE);

  gimp_procedure_set_menu_label (procedure, _("_Anime Style (CelGAN)..."));
  gimp_procedure_add_menu_path (procedure, "<Image>/Filters/Artistic");

  gimp_procedure_set_documentation
    (procedure,
     _("Turn a photo into an anime-style picture"),
     _("Redraws the drawable (or the selection) in the style of a CelGAN "
       "model: a generative network that runs on any Vulkan device, "
       "including the CPU. Models are .safetensors files found in "
       "$CELGAN_MODEL_PATH, in ~/.local/share/celgan/models "
       "($XDG_DATA_HOME/celgan/models) and in the installed models folder; "
       "'model-file' uses any other file. Large images are processed in "
       "tiles with the same result."),
     name);
  gimp_procedure_set_attribution (procedure,
                                  "The CelGAN authors",
                                  "The CelGAN authors",
                                  "2025");

  /* The models present when GIMP queried the plug-in; the dialog lists them afresh. */
  choice = gimp_choice_new ();
  models = celgan_models_find ();
  for (i = 0; i < models->len; i++)
    {
      CelganModelFile *model = models->pdata[i];

      gimp_choice_add (choice, model->nick, (gint) i, model->label, model->help);
      if (i == 0)
        default_model = model->nick;
    }
  gimp_choice_add (choice, CELGAN_MODEL_FILE_CHOICE, (gint) models->len,
                   _("Model file (choose below)"),
                   _("The .safetensors file given in 'model-file'"));

  gimp_procedure_add_choice_argument (procedure, "model",
                                      _("_Model"),
                                      _("The style: an installed model, or 'file' "
                                        "for the file given in 'model-file'"),
                                      choice, default_model,
                                      G_PARAM_READWRITE);
  g_ptr_array_free (models, TRUE);

  gimp_procedure_add_file_argument (procedure, "model-file",
                                    _("Model _file"),
                                    _("A CelGAN model (.safetensors), used when "
                                      "'model' is 'file'"),
                                    GIMP_FILE_CHOOSER_ACTION_OPEN,
                                    TRUE, NULL,
                                    G_PARAM_READWRITE);

  gimp_procedure_add_double_argument (procedure, "strength",
                                      _("_Strength"),
                                      _("How much of the style to apply: "
                                        "0 keeps the original, 1 is the full style"),
                                      0.0, 1.0, 1.0,
                                      G_PARAM_READWRITE);

  gimp_procedure_add_boolean_argument (procedure, "keep-colors",
                                       _("_Keep colors"),
                                       _("Keep the original colors and take only "
                                         "the style's light and shade"),
                                       FALSE,
                                       G_PARAM_READWRITE);

  gimp_procedure_add_file_argument (procedure, "reference",
                                    _("_Reference image"),
                                    _("The anime image whose look is transferred, "
                                      "for reference-guided models (style models "
                                      "ignore it)"),
                                    GIMP_FILE_CHOOSER_ACTION_OPEN,
                                    TRUE, NULL,
                                    G_PARAM_READWRITE);

  gimp_procedure_add_drawable_argument (procedure, "reference-layer",
                                        _("Reference _layer"),
                                        _("A layer of an open image to use as the "
                                          "reference instead of a file"),
                                        TRUE,
                                        G_PARAM_READWRITE);

  gimp_procedure_add_int_argument (procedure, "tile-size",
                                   _("_Tile size"),
                                   _("Largest tile edge in pixels; 0 chooses from "
                                     "the device memory. The result is the same "
                                     "for every tile size"),
                                   0, MAX_TILE_SIZE, 0,
                                   G_PARAM_READWRITE);

  gimp_procedure_add_string_argument (procedure, "device",
                                      _("_Device"),
                                      _("The Vulkan device: empty for automatic, "
                                        "an index, or part of its name "
                                        "(\"llvmpipe\" is the CPU)"),
                                      "",
                                      G_PARAM_READWRITE);

  return procedure;
}


/* The 8-bit format the preview draws in, for the drawable's color model and alpha. */
static const Babl *
celgan_preview_format (GimpDrawable *drawable)
{
  if (gimp_drawable_is_rgb (drawable))
    return babl_format (gimp_drawable_has_alpha (drawable) ? "R'G'B'A u8" : "R'G'B' u8");

  return babl_format (gimp_drawable_has_alpha (drawable) ? "Y'A u8" : "Y' u8");
}

/* The preview of a model that scales the image: the result at 100 %, centred on the centre of the
 * visible part of the drawable (a zoom of it by the model's factor), so its detail can be judged. */
static void
celgan_preview_scaled (CelganState *state,
                       GimpPreview *preview)
{
  const Babl *preview_format;
  gint        px, py, pw, ph, sw, sh, x0, y0, row, bpp;
  gint        s = state->scale, ch = state->channels;
  gfloat     *view;
  guchar     *pixels;

  gimp_preview_get_position (preview, &px, &py);
  gimp_preview_get_size (preview, &pw, &ph);
  sw = state->width * s;
  sh = state->height * s;
  x0 = CLAMP ((px + pw / 2) * s - pw / 2, 0, MAX (sw - pw, 0));
  y0 = CLAMP ((py + ph / 2) * s - ph / 2, 0, MAX (sh - ph, 0));

  preview_format = celgan_preview_format (state->drawable);
  bpp    = babl_format_get_bytes_per_pixel (preview_format);
  view   = g_new0 (gfloat, (gsize) pw * ph * ch);
  pixels = g_new (guchar, (gsize) pw * ph * bpp);

  for (row = 0; row < ph && y0 + row < sh; row++)
    memcpy (view + (gsize) row * pw * ch,
            state->stylized + ((gsize) (y0 + row) * sw + x0) * ch,
            sizeof (gfloat) * MIN (pw, sw - x0) * ch);

  babl_process (babl_fish (state->format, preview_format), view, pixels, (glong) pw * ph);
  gimp_preview_draw_buffer (preview, pixels, pw * bpp);

  g_free (pixels);
  g_free (view);
}

/* Applies a model that scales the image: the image is scaled by the model's factor (the other layers,
 * channels and paths as GIMP scales them) and the network's output replaces the drawable's pixels, all
 * in one undo step. The network ran before anything changed, so an error or a cancel leaves the image
 * as it was. */
static gboolean
celgan_apply_scaled (CelganState  *state,
                     GError      **error)
{
  GimpImage   *image = gimp_item_get_image (GIMP_ITEM (state->drawable));
  GimpChannel *saved = NULL;
  GeglBuffer  *shadow;
  gint         s = state->scale;
  gint         iw = gimp_image_get_width (image), ih = gimp_image_get_height (image);

  if ((gint64) iw * s > GIMP_MAX_IMAGE_SIZE || (gint64) ih * s > GIMP_MAX_IMAGE_SIZE)
    {
      g_set_error (error, GIMP_PLUG_IN_ERROR, 0,
                   _("Scaling the image by %d would make it larger than GIMP allows."), s);
      return FALSE;
    }

  gimp_image_undo_group_start (image);
  gimp_image_scale (image, iw * s, ih * s);

  /* The drawable is now the area times s, at its offsets times s. Merging the shadow is the drawable's
   * undo step; it applies the selection mask, so a selection is set aside meanwhile (the whole layer
   * is scaled) and restored after. */
  if (gimp_drawable_get_width (state->drawable) != state->width * s ||
      gimp_drawable_get_height (state->drawable) != state->height * s)
    {
      gimp_image_undo_group_end (image);
      g_set_error (error, GIMP_PLUG_IN_ERROR, 0,
                   _("The layer was not scaled to %d x %d pixels."),
                   state->width * s, state->height * s);
      return FALSE;
    }
  if (! gimp_selection_is_empty (image))
    {
      saved = gimp_selection_save (image);
      gimp_selection_none (image);
    }
  shadow = gimp_drawable_get_shadow_buffer (state->drawable);
  gegl_buffer_set (shadow, GEGL_RECTANGLE (0, 0, state->width * s, state->height * s),
                   0, state->format, state->stylized, GEGL_AUTO_ROWSTRIDE);
  g_object_unref (shadow);
  gimp_drawable_merge_shadow (state->drawable, TRUE);
  gimp_drawable_update (state->drawable, 0, 0, state->width * s, state->height * s);
  if (saved)
    {
      gimp_image_select_item (image, GIMP_CHANNEL_OP_REPLACE, GIMP_ITEM (saved));
      gimp_image_remove_channel (image, saved);
    }
  gimp_image_undo_group_end (image);

  return TRUE;
}

/* The filter: the stylized bounds, then strength and keep-colors, onto the shadow buffer, or onto the
 * preview's visible area (preview != NULL). */
static gboolean
celgan (CelganState  *state,
        GimpPreview  *preview,
        GError      **error)
{
  CelganParams  params;
  gint          ch = state->channels;
  gboolean      success;
  gint64        start = g_get_monotonic_time ();

  if (! celgan_params_get (state, &params, error))
    {
      celgan_params_clear (&params);
      return FALSE;
    }

  success = celgan_stylize (state, &params, error);

  if (success && preview && state->scale != 1)
    celgan_preview_scaled (state, preview);
  else if (success && state->scale != 1)
    success = celgan_apply_scaled (state, error);
  else if (success && preview)
    {
      const Babl *preview_format;
      gint        px, py, pw, ph;
      gint        x0, y0, x1, y1;
      gfloat     *view_original, *view;
      guchar     *pixels;
      gint        bpp, row;

      gimp_preview_get_position (preview, &px, &py);
      gimp_preview_get_size (preview, &pw, &ph);

      preview_format = celgan_preview_format (state->drawable);
      bpp = babl_format_get_bytes_per_pixel (preview_format);

      view_original = g_new (gfloat, (gsize) pw * ph * ch);
      view          = g_new (gfloat, (gsize) pw * ph * ch);
      pixels        = g_new (guchar, (gsize) pw * ph * bpp);

      /* The visible area: the original around the bounds, the result inside. */
      gegl_buffer_get (state->buffer, GEGL_RECTANGLE (px, py, pw, ph), 1.0,
                       state->format, view_original,
                       GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_CLAMP);
      memcpy (view, view_original, sizeof (gfloat) * pw * ph * ch);

      x0 = MAX (px, state->x);
      y0 = MAX (py, state->y);
      x1 = MIN (px + pw, state->x + state->width);
      y1 = MIN (py + ph, state->y + state->height);

      for (row = y0; row < y1 && x0 < x1; row++)
        {
          gsize   at  = ((gsize) (row - py) * pw + (x0 - px)) * ch;
          gfloat *src = state->stylized +
                        ((gsize) (row - state->y) * state->width + (x0 - state->x)) * ch;

          memcpy (view + at, src, sizeof (gfloat) * (x1 - x0) * ch);
          cel_postprocess (view_original + at, view + at, x1 - x0, 1, ch,
                           (gfloat) celgan_pixel_strength (state, &params), params.keep_colors);
        }

      babl_process (babl_fish (state->format, preview_format),
                    view, pixels, (glong) pw * ph);
      gimp_preview_draw_buffer (preview, pixels, pw * bpp);

      g_free (pixels);
      g_free (view);
      g_free (view_original);
    }
  else if (success)
    {
      GeglBuffer *shadow;
      gfloat     *result;

      result = g_try_new (gfloat, (gsize) state->width * state->height * ch);
      if (! result)
        {
          celgan_set_error (error, CEL_ERROR_OUT_OF_HOST_MEMORY, "");
          celgan_params_clear (&params);
          return FALSE;
        }

      memcpy (result, state->stylized,
              sizeof (gfloat) * state->width * state->height * ch);
      cel_postprocess (state->original, result, state->width, state->height, ch,
                       (gfloat) celgan_pixel_strength (state, &params), params.keep_colors);

      /* Only the shadow buffer is written; merging it is the one undo step and applies the
       * selection mask. A cancel before this point leaves the image as it was. */
      shadow = gimp_drawable_get_shadow_buffer (state->drawable);
      gegl_buffer_set (shadow,
                       GEGL_RECTANGLE (state->x, state->y, state->width, state->height),
                       0, state->format, result, GEGL_AUTO_ROWSTRIDE);
      g_object_unref (shadow);
      g_free (result);

      gimp_drawable_merge_shadow (state->drawable, TRUE);
      gimp_drawable_update (state->drawable,
                            state->x, state->y, state->width, state->height);
    }

  /* CELGAN_TIMING=1: how long each update took, and where the preview is on the screen (the dialog
   * test reads it). */
  if (g_getenv ("CELGAN_TIMING") && preview)
    {
      GtkWidget *area = gimp_preview_get_area (preview);
      gint       pw, ph, px, py, sx = -1, sy = -1;

      gimp_preview_get_position (preview, &px, &py);
      gimp_preview_get_size (preview, &pw, &ph);
      if (gtk_widget_get_window (area))
        gdk_window_get_origin (gtk_widget_get_window (area), &sx, &sy);

      g_printerr ("celgan-timing: preview refresh in %.1f ms, %dx%d at (%d,%d) "
                  "of the drawable, on screen at (%d,%d)\n",
                  (g_get_monotonic_time () - start) / 1000.0,
                  pw, ph, px, py, sx, sy);
    }
  else if (g_getenv ("CELGAN_TIMING"))
    {
      g_printerr ("celgan-timing: apply in %.1f ms\n",
                  (g_get_monotonic_time () - start) / 1000.0);
    }

  celgan_params_clear (&params);

  return success;
}


/*  Run  */

static GimpValueArray *
celgan_run (GimpProcedure        *procedure,
            GimpRunMode           run_mode,
            GimpImage            *image,
            GimpDrawable        **drawables,
            GimpProcedureConfig  *config,
            gpointer              run_data)
{
  GimpPDBStatusType  status = GIMP_PDB_SUCCESS;
  GError            *error  = NULL;
  GimpDrawable      *drawable;
  CelganState        state;

  gegl_init (NULL, NULL);

  if (gimp_core_object_array_get_length ((GObject **) drawables) != 1)
    {
      g_set_error (&error, GIMP_PLUG_IN_ERROR, 0,
                   _("Procedure '%s' works with one drawable."),
                   PLUG_IN_PROC);

      return gimp_procedure_new_return_values (procedure,
                                               GIMP_PDB_CALLING_ERROR,
                                               error);
    }

  drawable = drawables[0];

  if (gimp_drawable_is_indexed (drawable))
    {
      g_set_error (&error, GIMP_PLUG_IN_ERROR, 0,
                   _("Indexed images are not supported: convert the image to "
                     "RGB or grayscale first."));

      return gimp_procedure_new_return_values (procedure,
                                               GIMP_PDB_CALLING_ERROR,
                                               error);
    }

  if (! celgan_state_init (&state, drawable, config))
    {
      /* Nothing of the drawable is selected: nothing to do. */
      celgan_state_clear (&state);
      return gimp_procedure_new_return_values (procedure, GIMP_PDB_SUCCESS, NULL);
    }

  if (! state.original)
    {
      celgan_set_error (&error, CEL_ERROR_OUT_OF_HOST_MEMORY, "");
      status = GIMP_PDB_EXECUTION_ERROR;
    }
  else if (run_mode == GIMP_RUN_INTERACTIVE &&
           ! celgan_dialog (procedure, config, &state))
    {
      status = GIMP_PDB_CANCEL;
    }
  else if (! celgan (&state, NULL, &error))
    {
      status = GIMP_PDB_EXECUTION_ERROR;
    }
  else if (run_mode != GIMP_RUN_NONINTERACTIVE)
    {
      gimp_displays_flush ();
    }

  celgan_state_clear (&state);

  return gimp_procedure_new_return_values (procedure, status, error);
}


/*  Dialog  */

static void
celgan_preview_invalidated (GimpPreview *preview,
                            CelganState *state)
{
  GError *error = NULL;

  if (celgan (state, preview, &error))
    {
      gtk_label_set_text (GTK_LABEL (state->status_label), "");
      gtk_widget_hide (state->status_label);
    }
  else
    {
      /* Show the original and say why. */
      gimp_preview_draw (preview);
      gtk_label_set_text (GTK_LABEL (state->status_label), error->message);
      gtk_widget_show (state->status_label);
      g_clear_error (&error);
    }
}

/* The model's description under the chooser; the reference choosers only for reference-guided models,
 * the model file chooser only for "file". */
static void
celgan_model_changed (GimpProcedureConfig *config,
                      GParamSpec          *pspec,
                      GimpProcedureDialog *dialog)
{
  CelganState *state = g_object_get_data (G_OBJECT (dialog), "celgan-state");
  CelganParams params;
  GError      *error = NULL;
  gchar       *model = NULL;
  gboolean     needs_reference = FALSE;
  gboolean     scaled          = FALSE;

  g_object_get (config, "model", &model, NULL);
  gtk_widget_set_visible (gimp_procedure_dialog_get_widget (dialog, "model-file",
                                                            G_TYPE_NONE),
                          g_strcmp0 (model, CELGAN_MODEL_FILE_CHOICE) == 0);
  g_free (model);

  if (celgan_params_get (state, &params, &error) &&
      celgan_prepare (state, &params, &error))
    {
      const cel_model_info *info = cel_model_get_info (state->model);
      gchar                *text;

      needs_reference = info->needs_reference;
      scaled          = info->scale != 1;
      if (needs_reference)
        text = g_strdup_printf (_("%s\nReference-guided: transfers the look of "
                                  "the reference image."), info->description);
      else if (scaled)
        text = g_strdup_printf (_("%s\nScales the whole image by %d. The preview "
                                  "shows the result at 100%%: the middle of the "
                                  "view, zoomed %d times."),
                                info->description, info->scale, info->scale);
      else
        text = g_strdup (info->description);

      gtk_label_set_text (GTK_LABEL (state->info_label), text);
      g_free (text);
    }
  else
    {
      gtk_label_set_text (GTK_LABEL (state->info_label), error->message);
      g_clear_error (&error);
    }
  celgan_params_clear (&params);

  gtk_widget_set_visible (gimp_procedure_dialog_get_widget (dialog, "reference",
                                                            G_TYPE_NONE),
                          needs_reference);
  gtk_widget_set_visible (gimp_procedure_dialog_get_widget (dialog, "reference-layer",
                                                            G_TYPE_NONE),
                          needs_reference);
  /* A scaled result has no original of its size to blend with. */
  gtk_widget_set_sensitive (gimp_procedure_dialog_get_widget (dialog, "strength",
                                                              G_TYPE_NONE),
                            ! scaled);
  gtk_widget_set_sensitive (gimp_procedure_dialog_get_widget (dialog, "keep-colors",
                                                              G_TYPE_NONE),
                            ! scaled);
}

/* A combo of the Vulkan devices for the "device" string ("" automatic, else the device's index). */
static GtkWidget *
celgan_device_combo (GimpProcedureConfig *config)
{
  GtkListStore    *store;
  GtkWidget       *combo;
  cel_device_info  infos[16];
  uint32_t         count = 0;
  uint32_t         i;
  gchar           *current = NULL;
  gboolean         found;

  store = gtk_list_store_new (2, G_TYPE_STRING, G_TYPE_STRING);
  gtk_list_store_insert_with_values (store, NULL, -1,
                                     0, "", 1, _("Automatic"), -1);

  if (cel_device_list (infos, G_N_ELEMENTS (infos), &count, NULL, 0) == CEL_OK)
    for (i = 0; i < MIN (count, G_N_ELEMENTS (infos)); i++)
      {
        gchar *id    = g_strdup_printf ("%u", infos[i].index);
        gchar *label = g_strdup_printf (infos[i].is_cpu ? _("%s (CPU)") : "%s",
                                        infos[i].name);

        gtk_list_store_insert_with_values (store, NULL, -1, 0, id, 1, label, -1);
        g_free (id);
        g_free (label);
      }

  /* A value given by a script ("llvmpipe") stays choosable. */
  g_object_get (config, "device", &current, NULL);
  found = (! current || ! *current);
  for (i = 0; ! found && i < MIN (count, G_N_ELEMENTS (infos)); i++)
    {
      gchar *id = g_strdup_printf ("%u", infos[i].index);

      found = (strcmp (id, current) == 0);
      g_free (id);
    }
  if (! found)
    gtk_list_store_insert_with_values (store, NULL, -1,
                                       0, current, 1, current, -1);
  g_free (current);

  combo = gimp_prop_string_combo_box_new (G_OBJECT (config), "device",
                                          GTK_TREE_MODEL (store), 0, 1);
  g_object_unref (store);

  return combo;
}

static gboolean
celgan_dialog (GimpProcedure       *procedure,
               GimpProcedureConfig *config,
               CelganState         *state)
{
  GtkWidget *dialog;
  GtkWidget *preview;
  GtkWidget *box;
  GtkWidget *hbox;
  GtkWidget *label;
  GtkWidget *combo;
  GtkWidget *scale;
  gboolean   run;

  gimp_ui_init (PLUG_IN_BINARY);

  dialog = gimp_procedure_dialog_new (procedure, config,
                                      _("Anime Style (CelGAN)"));
  g_object_set_data (G_OBJECT (dialog), "celgan-state", state);
  state->interactive = TRUE;

  preview = gimp_procedure_dialog_get_drawable_preview (GIMP_PROCEDURE_DIALOG (dialog),
                                                        "preview", state->drawable);

  state->status_label =
    gimp_procedure_dialog_get_label (GIMP_PROCEDURE_DIALOG (dialog), "status",
                                     "", FALSE, FALSE);
  gtk_label_set_line_wrap (GTK_LABEL (state->status_label), TRUE);
  gtk_label_set_max_width_chars (GTK_LABEL (state->status_label), 50);
  gtk_label_set_xalign (GTK_LABEL (state->status_label), 0.0);
  gtk_label_set_selectable (GTK_LABEL (state->status_label), TRUE);

  gimp_procedure_dialog_get_widget (GIMP_PROCEDURE_DIALOG (dialog), "model",
                                    G_TYPE_NONE);
  state->info_label =
    gimp_procedure_dialog_get_label (GIMP_PROCEDURE_DIALOG (dialog), "model-info",
                                     "", FALSE, FALSE);
  gtk_label_set_line_wrap (GTK_LABEL (state->info_label), TRUE);
  gtk_label_set_max_width_chars (GTK_LABEL (state->info_label), 50);
  gtk_label_set_xalign (GTK_LABEL (state->info_label), 0.0);
  gimp_label_set_attributes (GTK_LABEL (state->info_label),
                             PANGO_ATTR_STYLE, PANGO_STYLE_ITALIC,
                             -1);

  scale = gimp_procedure_dialog_get_scale_entry (GIMP_PROCEDURE_DIALOG (dialog),
                                                 "strength", 100.0);
  gimp_label_spin_set_digits (GIMP_LABEL_SPIN (scale), 0);

  /* Advanced: device and tile size. */
  gimp_procedure_dialog_get_label (GIMP_PROCEDURE_DIALOG (dialog), "advanced-title",
                                   _("Advanced"), FALSE, FALSE);
  box = gimp_procedure_dialog_fill_box (GIMP_PROCEDURE_DIALOG (dialog),
                                        "advanced-box", "tile-size", NULL);
  hbox  = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  label = gtk_label_new_with_mnemonic (_("_Device"));
  combo = celgan_device_combo (config);
  gtk_label_set_mnemonic_widget (GTK_LABEL (label), combo);
  gtk_box_pack_start (GTK_BOX (hbox), label, FALSE, FALSE, 0);
  gtk_box_pack_start (GTK_BOX (hbox), combo, TRUE, TRUE, 0);
  gtk_box_pack_start (GTK_BOX (box), hbox, FALSE, FALSE, 0);
  gtk_box_reorder_child (GTK_BOX (box), hbox, 0);
  gtk_widget_show_all (hbox);
  gimp_procedure_dialog_fill_frame (GIMP_PROCEDURE_DIALOG (dialog),
                                    "advanced-frame", "advanced-title", FALSE,
                                    "advanced-box");

  gimp_procedure_dialog_fill (GIMP_PROCEDURE_DIALOG (dialog),
                              "preview", "status",
                              "model", "model-info", "model-file",
                              "strength", "keep-colors",
                              "reference", "reference-layer",
                              "advanced-frame",
                              NULL);

  celgan_model_changed (config, NULL, GIMP_PROCEDURE_DIALOG (dialog));
  gtk_widget_hide (state->status_label);

  g_signal_connect (config, "notify::model",
                    G_CALLBACK (celgan_model_changed), dialog);
  g_signal_connect (config, "notify::model-file",
                    G_CALLBACK (celgan_model_changed), dialog);
  g_signal_connect (preview, "invalidated",
                    G_CALLBACK (celgan_preview_invalidated), state);
  g_signal_connect_swapped (config, "notify",
                            G_CALLBACK (gimp_preview_invalidate), preview);

  run = gimp_procedure_dialog_run (GIMP_PROCEDURE_DIALOG (dialog));

  g_signal_handlers_disconnect_by_data (config, dialog);
  g_signal_handlers_disconnect_by_data (config, preview);
  gtk_widget_destroy (dialog);
  state->status_label = NULL;
  state->info_label   = NULL;

  return run;
}
