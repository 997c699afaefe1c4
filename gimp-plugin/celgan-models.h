/* CelGAN GIMP plug-in: finding model files
 *
 * This program is free software: you can redistribute it and/or modify
 * it under the terms of the GNU General Public License as published by
 * the Free Software Foundation; either version 3 of the License, or
 * (at your option) any later version.
 */

#ifndef __CELGAN_MODELS_H__
#define __CELGAN_MODELS_H__

#include <glib.h>

/* The choice id used for "the file given in model-file". */
#define CELGAN_MODEL_FILE_CHOICE "file"

typedef struct
{
  gchar    *nick;            /* choice id: file name without .safetensors, lower case */
  gchar    *path;
  gchar    *label;           /* the model's name, else its file name */
  gchar    *help;            /* its description, or why it cannot be read */
  gboolean  needs_reference;
  gboolean  readable;
  gint      group;           /* list order: 0 style, 1 reference-guided, 2 scales the image, 3 unreadable */
} CelganModelFile;

/* The folders searched, in order: each of $CELGAN_MODEL_PATH (colon-separated), the user's
 * $XDG_DATA_HOME/celgan/models (~/.local/share/celgan/models), then the installed CELGAN_MODEL_DIR.
 * A NULL-terminated array, freed with g_strfreev.
 */
gchar           ** celgan_models_dirs (void);

/* Every *.safetensors file in those folders (a name found twice: the first one), grouped (style models,
 * reference-guided, scaling, unreadable), within a group by folder order then choice id. A GPtrArray of CelganModelFile that frees them with itself.
 */
GPtrArray        * celgan_models_find (void);

/* The model of that choice id, or NULL. */
CelganModelFile  * celgan_models_lookup (GPtrArray   *models,
                                         const gchar *nick);

#endif /* __CELGAN_MODELS_H__ */
