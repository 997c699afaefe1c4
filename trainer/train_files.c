/* The files and folders of a training run: the --config lookup, output folders, temporaries left by a killed
 * run and the metrics file of a resumed one (used by cmd_train.c). */
#include "train_files.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *train_read_text (const char *path) {
  FILE *f = fopen (path, "rb");
  if (!f)
    return NULL;
  char *buf = NULL;
  size_t n = 0, cap = 0;
  int c;
  while ((c = fgetc (f)) != EOF) {
    if (n + 2 > cap) {
      char *p = realloc (buf, cap = cap ? 2 * cap : 4096);
      if (!p) {
        free (buf);
        fclose (f);
        return NULL;
      }
      buf = p;
    }
    buf[n++] = (char) c;
  }
  fclose (f);
  if (buf)
    buf[n] = 0;
  return buf;
}

/* The architecture JSON of --config: a file, or a name in CELGAN_CONFIG_PATH, the installed configs and the
 * source tree's data/configs. */
char *train_resolve_config (const char *name) {
  struct stat sb;
  if (strchr (name, '/') || (stat (name, &sb) == 0 && S_ISREG (sb.st_mode)))
    return train_read_text (name);
  const char *env = getenv ("CELGAN_CONFIG_PATH");
  const char *dirs[] = { env, CELGAN_CONFIGDIR, CELGAN_SOURCE_CONFIGDIR };
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    if (!dirs[i] || !*dirs[i])
      continue;
    char path[4096];
    snprintf (path, sizeof path, "%s/%s.json", dirs[i], name);
    char *t = train_read_text (path);
    if (t)
      return t;
  }
  return NULL;
}

bool train_make_dir (const char *path, char *err, size_t errlen) {
  if (mkdir (path, 0755) != 0 && errno != EEXIST) {
    snprintf (err, errlen, "cannot create the folder '%s': %s", path, strerror (errno));
    return false;
  }
  if (access (path, W_OK) != 0) {
    snprintf (err, errlen, "cannot write to the folder '%s': %s", path, strerror (errno));
    return false;
  }
  return true;
}

/* The folder of a file name ("." when none). */
void train_dir_of (const char *path, char *out, size_t len) {
  snprintf (out, len, "%s", path);
  char *slash = strrchr (out, '/');
  if (!slash)
    snprintf (out, len, ".");
  else if (slash == out)
    out[1] = 0;
  else
    *slash = 0;
}

/* Removes the temporary files (NAME.tmp-PID, see cel_safetensors_save and image_save) that a killed run left in
 * dir: those whose name starts with `prefix` (NULL: any) and whose process is gone. A kill -9 during a write
 * leaves one; the file it was replacing is intact. Returns how many were removed. */
int train_remove_stale_temporaries (const char *dir, const char *prefix) {
  DIR *d = opendir (dir);
  if (!d)
    return 0;
  int removed = 0;
  struct dirent *e;
  while ((e = readdir (d))) {
    const char *t = strstr (e->d_name, ".tmp-");
    if (!t || (prefix && strncmp (e->d_name, prefix, strlen (prefix)) != 0))
      continue;
    char *end = NULL;
    long pid = strtol (t + 5, &end, 10);
    if (pid <= 0 || *end || strchr (t + 5, '-') || (kill ((pid_t) pid, 0) == 0 || errno != ESRCH))
      continue;
    char path[4400];
    snprintf (path, sizeof path, "%s/%s", dir, e->d_name);
    removed += unlink (path) == 0;
  }
  closedir (d);
  return removed;
}

/* Keeps the metrics lines of steps <= last (a resumed run rewrites what the killed run wrote after its
 * checkpoint). */
void train_truncate_metrics (const char *path, int64_t last) {
  char *text = train_read_text (path);
  if (!text)
    return;
  char tmp[4300];
  snprintf (tmp, sizeof tmp, "%s.tmp-%ld", path, (long) getpid ()); /* removed by the next run if killed */
  FILE *f = fopen (tmp, "w");
  if (f) {
    for (char *save = NULL, *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save)) {
      long long step;
      if (sscanf (line, "{\"step\":%lld", &step) == 1 && step <= last)
        fprintf (f, "%s\n", line);
    }
    if (fclose (f) == 0)
      rename (tmp, path);
  }
  free (text);
}
