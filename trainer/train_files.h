/* The files and folders of a training run (train_files.c): the --config lookup, output folders, temporaries left
 * by a killed run and the metrics file of a resumed one. */
#ifndef CELGAN_TRAIN_FILES_H
#define CELGAN_TRAIN_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The whole file as a NUL-terminated string (malloc'd), or NULL. */
char *train_read_text (const char *path);
/* The architecture JSON of --config: a file, or a name in CELGAN_CONFIG_PATH, the installed configs and the
 * source tree's data/configs; NULL when none is found. */
char *train_resolve_config (const char *name);
/* Makes the folder (one level) unless it exists, and checks that it is writable; false with a sentence in err. */
bool train_make_dir (const char *path, char *err, size_t errlen);
/* The folder of a file name ("." when none). */
void train_dir_of (const char *path, char *out, size_t len);
/* Removes the temporary files (NAME.tmp-PID) that a killed run left in dir, those whose name starts with
 * `prefix` (NULL: any) and whose process is gone. Returns how many were removed. */
int train_remove_stale_temporaries (const char *dir, const char *prefix);
/* Keeps the metrics lines of steps <= last (a resumed run rewrites what the killed run wrote after its
 * checkpoint). */
void train_truncate_metrics (const char *path, int64_t last);

#endif
