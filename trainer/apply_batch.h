/* Bookkeeping of `celgan apply` on a folder: which file comes next, what became of each, and the summary.
 *
 * Under MPI (mpirun -n N celgan apply -i DIR -o DIR ...) the files are handed out dynamically: every rank takes the
 * next index from a counter shared by all ranks (an MPI atomic fetch-and-add on rank 0), so ranks that meet small
 * images take more of them and large and small images balance. A rank whose device fails stops taking files; the
 * others finish the folder. At the end the counts are summed, rank 0 prints the summary, and every rank returns
 * the same exit status. Without MPI it is a plain loop over the files with the same summary. */
#ifndef CELGAN_APPLY_BATCH_H
#define CELGAN_APPLY_BATCH_H

#include "mpi_comm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct apply_batch {
  mpi_comm *comm;                    /* NULL: one process */
  size_t n, next;                    /* files; the next index without MPI */
  int64_t written, skipped, failed;  /* by this rank */
  int64_t taken;                     /* files this rank took */
  int code;                          /* this rank's worst exit status of a stopping failure */
  double start;
} apply_batch;

/* Starts a batch of n files (collective under MPI). false with a sentence when the counter cannot be made. */
bool apply_batch_begin (apply_batch *b, mpi_comm *comm, size_t n, char *err, size_t errlen);
/* The next file index for this rank; false when none is left. */
bool apply_batch_next (apply_batch *b, size_t *index);
/* Sums the counts over the ranks and prints the summary (rank 0, unless quiet). Returns the exit status: 0 all
 * written or skipped, 1 some failed, or the worst stopping code of any rank. */
int apply_batch_end (apply_batch *b, bool quiet);

#endif
