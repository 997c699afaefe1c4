/* CelGAN GIMP plug-in: finding model files
 *
 * Models are .safetensors files with CelGAN metadata. Dropping one into any of the folders below is all
 * it takes to add a style; its name and description come from the file itself.
 *
 * This program is free software: you can redistribute it and/or modify
 * it under the terms of the GNU General Public License as published by
 * the Free Software Foundation; either version 3 of the License, or
 * (at your option) any later version.
 */

#include <string.h>

#include <glib.h>
#include <glib/gi18n-lib.h>

#include "celgan.h"

#include "celgan-models.h"


#define MODEL_SUFFIX ".safetensors"


static void
celgan_model_file_free (gpointer data)
{
  CelganModelFile *model = data;

  g_free (model->nick);
  g_free (model->path);
  g_free (model->label);
  g_free (model->help);
  g_free (model);
}

gchar **
celgan_models_dirs (void)
{
  GPtrArray   *dirs = g_ptr_array_new ();
  const gchar *env  = g_getenv ("CELGAN_MODEL_PATH");

  if (env && *env)
    {
      gchar **parts = g_strsplit (env, G_SEARCHPATH_SEPARATOR_S, -1);
      gint    i;

      for (i = 0; parts[i]; i++)
        if (*parts[i])
          g_ptr_array_add (dirs, g_strdup (parts[i]));

      g_strfreev (parts);
    }

  g_ptr_array_add (dirs, g_build_filename (g_get_user_data_dir (),
                                           "celgan", "models", NULL));
  g_ptr_array_add (dirs, g_strdup (CELGAN_MODEL_DIR));
  g_ptr_array_add (dirs, NULL);

  return (gchar **) g_ptr_array_free (dirs, FALSE);
}

/* "My Style v2.safetensors" -> "my-style-v2" */
static gchar *
celgan_model_nick (const gchar *filename)
{
  gchar *nick = g_ascii_strdown (filename, strlen (filename) - strlen (MODEL_SUFFIX));
  gchar *p;

  for (p = nick; *p; p++)
    if (! g_ascii_isalnum (*p) && *p != '-' && *p != '_' && *p != '.')
      *p = '-';

  return nick;
}

static CelganModelFile *
celgan_model_file_new (const gchar *dir,
                       const gchar *filename)
{
  CelganModelFile *model = g_new0 (CelganModelFile, 1);
  cel_model       *m     = NULL;
  gchar            err[512] = "";

  model->nick = celgan_model_nick (filename);
  model->path = g_build_filename (dir, filename, NULL);

  if (cel_model_load (model->path, &m, err, sizeof err) == CEL_OK)
    {
      const cel_model_info *info = cel_model_get_info (m);

      const gchar *name  = *info->name ? info->name : model->nick;
      const gchar *group = cel_safetensors_metadata (cel_model_tensors (m), "celgan.group");
      gboolean     restore = info->scale != 1 ||
                             g_strcmp0 (group, "Upscale / denoise") == 0;

      /* Grouped in the list by what they do: style models first (no prefix), then reference-guided, then
       * the upscalers and denoisers (scale models, and imported models that say so, such as waifu2x's
       * noise-only ones). */
      if (restore && info->scale != 1)
        model->label = g_strdup_printf (_("Upscale / denoise %dx: %s"), info->scale, name);
      else if (restore)
        model->label = g_strdup_printf (_("Denoise: %s"), name);
      else if (info->needs_reference)
        model->label = g_strdup_printf (_("Reference-guided: %s"), name);
      else
        model->label = g_strdup (name);
      model->group = restore ? 2 : info->needs_reference ? 1 : 0;
      model->help  = g_strdup (info->description);
      model->needs_reference = info->needs_reference;
      model->readable        = TRUE;
      cel_model_free (m);
    }
  else
    {
      /* Listed all the same (last): choosing it says what is wrong with it. */
      model->group = 3;
      model->label = g_strdup_printf (_("%s (cannot be read)"), model->nick);
      model->help  = g_strdup (err);
    }

  return model;
}

/* By choice id: "fast" before "fast-b" (by file name, "fast-b.safetensors" would come first). */
static gint
compare_names (gconstpointer a,
               gconstpointer b)
{
  gchar *nick_a = celgan_model_nick (*(const gchar * const *) a);
  gchar *nick_b = celgan_model_nick (*(const gchar * const *) b);
  gint   result = strcmp (nick_a, nick_b);

  g_free (nick_a);
  g_free (nick_b);

  return result;
}

static gint
compare_groups (gconstpointer a,
                gconstpointer b)
{
  const CelganModelFile *x = *(CelganModelFile * const *) a;
  const CelganModelFile *y = *(CelganModelFile * const *) b;

  return x->group - y->group;
}

GPtrArray *
celgan_models_find (void)
{
  GPtrArray  *models = g_ptr_array_new_with_free_func (celgan_model_file_free);
  GHashTable *seen   = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  gchar     **dirs   = celgan_models_dirs ();
  gint        i;

  for (i = 0; dirs[i]; i++)
    {
      GDir        *dir = g_dir_open (dirs[i], 0, NULL);
      GPtrArray   *names;
      const gchar *name;
      guint        j;

      if (! dir)
        continue;

      names = g_ptr_array_new_with_free_func (g_free);
      while ((name = g_dir_read_name (dir)))
        if (g_str_has_suffix (name, MODEL_SUFFIX) &&
            strlen (name) > strlen (MODEL_SUFFIX))
          g_ptr_array_add (names, g_strdup (name));
      g_dir_close (dir);

      g_ptr_array_sort (names, compare_names);

      for (j = 0; j < names->len; j++)
        {
          gchar *nick = celgan_model_nick (names->pdata[j]);

          if (strcmp (nick, CELGAN_MODEL_FILE_CHOICE) != 0 &&
              ! g_hash_table_contains (seen, nick))
            {
              g_ptr_array_add (models,
                               celgan_model_file_new (dirs[i], names->pdata[j]));
              g_hash_table_add (seen, nick);
            }
          else
            {
              g_free (nick);
            }
        }

      g_ptr_array_free (names, TRUE);
    }

  g_strfreev (dirs);
  g_hash_table_destroy (seen);
  /* Stable: folder and name order within each group. */
  g_ptr_array_sort (models, compare_groups);

  return models;
}

CelganModelFile *
celgan_models_lookup (GPtrArray   *models,
                      const gchar *nick)
{
  guint i;

  for (i = 0; nick && i < models->len; i++)
    {
      CelganModelFile *model = models->pdata[i];

      if (strcmp (model->nick, nick) == 0)
        return model;
    }

  return NULL;
}
