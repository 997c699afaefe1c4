/* The celgan command: shared helpers of the subcommands. */
#ifndef CELGAN_CLI_H
#define CELGAN_CLI_H

#include "celgan.h"

#include <stdbool.h>

/* Exit codes scripts can trust. */
enum {
  EXIT_OK = 0,
  EXIT_FAILURE_GENERIC = 1, /* some inputs failed (apply continues with the others) */
  EXIT_USAGE = 2,           /* bad command line */
  EXIT_NO_DEVICE = 3,       /* no usable Vulkan device */
  EXIT_BAD_MODEL = 4,       /* model file missing or corrupt */
  EXIT_IO = 5,              /* input unreadable or output unwritable */
  EXIT_DEVICE = 6,          /* device error: out of memory at the smallest tile, device lost */
  EXIT_DIVERGED = 7,        /* train: a loss became NaN or infinite */
  EXIT_COMM = 8,            /* MPI: another rank failed, died or hung */
};

int cmd_devices (int argc, char **argv);
int cmd_info (int argc, char **argv);
int cmd_selftest (int argc, char **argv);
int cmd_apply (int argc, char **argv);
int cmd_import (int argc, char **argv);
int cmd_bench (int argc, char **argv);
int cmd_train (int argc, char **argv);
/* celgan import microast DIR ... (import_microast.c) */
int import_microast (int argc, char **argv);
/* celgan import ncnn ... (import_ncnn.c; argv[1] is "ncnn") */
int import_ncnn (int argc, char **argv);

/* Prints "celgan: <message>" to stderr ("celgan: rank R: <message>" after cli_set_rank). */
void cli_error (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
/* Names this process's MPI rank in every later error (-1: none). */
void cli_set_rank (int rank);
/* Creates a context on `device` (NULL: automatic); prints the error and returns NULL on failure. */
cel_context *cli_context (const char *device);
/* Exit code for a failed status. */
int cli_exit_code (cel_status st);

#endif
