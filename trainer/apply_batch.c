/* Batch stylization bookkeeping (apply_batch.h). */
#include "apply_batch.h"
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now (void) {
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

bool apply_batch_begin (apply_batch *b, mpi_comm *comm, size_t n, char *err, size_t errlen) {
  *b = (apply_batch) { .comm = comm, .n = n, .start = now () };
  return !comm || mpi_comm_counter_create (comm, err, errlen);
}

bool apply_batch_next (apply_batch *b, size_t *index) {
  int64_t i = b->comm ? mpi_comm_counter_next (b->comm) : (int64_t) b->next++;
  if (i < 0 || (size_t) i >= b->n)
    return false;
  *index = (size_t) i;
  b->taken++;
  return true;
}

int apply_batch_end (apply_batch *b, bool quiet) {
  int ranks = mpi_comm_size (b->comm), rank = mpi_comm_rank (b->comm);
  /* written, skipped, failed, then the files each rank took */
  double *sum = calloc ((size_t) ranks + 3, sizeof *sum);
  char err[512];
  int worst = b->code, who = 0;
  if (!sum) {
    cli_error ("out of memory");
    return EXIT_FAILURE_GENERIC;
  }
  sum[0] = (double) b->written;
  sum[1] = (double) b->skipped;
  sum[2] = (double) b->failed;
  sum[3 + rank] = (double) b->taken;
  if (!mpi_comm_sum_f64 (b->comm, sum, (size_t) ranks + 3, "the summary", err, sizeof err) ||
      !mpi_comm_max_code (b->comm, b->code, &worst, &who, "the summary", err, sizeof err)) {
    cli_error ("%s", err);
    free (sum);
    return EXIT_COMM;
  }
  if (rank == 0 && !quiet) {
    fprintf (stderr, "celgan: %zu images: %.0f written, %.0f skipped (existing), %.0f failed", b->n, sum[0], sum[1], sum[2]);
    if (ranks > 1) {
      fprintf (stderr, "; %d ranks took", ranks);
      for (int r = 0; r < ranks; r++)
        fprintf (stderr, "%s %.0f", r ? "," : "", sum[3 + r]);
    }
    fprintf (stderr, "; %.1f s\n", now () - b->start);
  }
  if (rank == 0 && !worst && sum[2] > 0)
    cli_error ("%.0f of %zu images failed", sum[2], b->n);
  int code = worst ? worst : sum[2] > 0 ? EXIT_FAILURE_GENERIC : EXIT_OK;
  free (sum);
  mpi_comm_counter_free (b->comm);
  return code;
}
