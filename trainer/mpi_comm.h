/* The celgan command's only view of MPI (docs/scaling.md): start, rank and size, the collectives that data-parallel
 * training and batch stylization need, each with a deadline, and an atomic work counter.
 *
 * One binary serves both worlds. mpi_comm_start returns NULL when the build has no MPI or when the process was not
 * started by an MPI launcher (mpirun, srun: seen in the environment); every function then behaves as for a single
 * rank, and the callers keep their ordinary single-process path.
 *
 * Failure model. Every collective is non-blocking underneath and polled against a deadline (--comm-timeout): a rank
 * that hangs makes the others print "no answer from the other ranks ..." and abort the job (MPI_Abort, exit
 * EXIT_COMM). A rank that dies is seen by the launcher, which stops the others with SIGTERM: a handler prints which
 * rank this is and the note the caller set last (say, the last checkpoint). MPI errors are returned, not fatal. */
#ifndef CELGAN_MPI_COMM_H
#define CELGAN_MPI_COMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mpi_comm mpi_comm;

/* True when this binary was built with MPI. */
bool mpi_comm_available (void);
/* Starts MPI when launched by an MPI launcher (environment OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_RANK; force with
 * CELGAN_MPI=1, prevent with CELGAN_MPI=0); NULL otherwise, or with a message on stderr when MPI fails to start.
 * timeout_s bounds every collective. */
mpi_comm *mpi_comm_start (double timeout_s);
/* Ends MPI. exit_code 0, or a failure every rank knows about (all_know): MPI_Finalize. A failure the other ranks
 * cannot know (this rank alone stops): MPI_Abort, so the launcher stops them at once. Frees c. */
void mpi_comm_finish (mpi_comm *c, int exit_code, bool all_know);

int mpi_comm_rank (const mpi_comm *c);       /* 0 when c is NULL */
int mpi_comm_size (const mpi_comm *c);       /* 1 when c is NULL */
int mpi_comm_local_rank (const mpi_comm *c); /* rank among the ranks of this machine; 0 when c is NULL */

/* The Vulkan device of this rank: `request` (-g) when it has no comma; the local rank's entry of a comma-separated
 * list ("0,1,2,3"); with no request, several ranks per machine and several devices, the local rank's device among
 * the discrete GPUs (or among all devices when there is none). Writes to buf; returns request, buf or NULL. */
const char *mpi_comm_device (const mpi_comm *c, const char *request, char *buf, size_t len);

/* A sentence written to stderr if the launcher stops this rank (SIGTERM), e.g. where the last checkpoint is. */
void mpi_comm_set_note (mpi_comm *c, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

/* Collectives (all ranks call them in the same order). On a timeout they abort the job (never return); on an MPI
 * error they return false with a sentence in err. */
/* Every rank's `code` (0: fine): returns the largest, and in *who the lowest rank that has it. */
bool mpi_comm_max_code (mpi_comm *c, int code, int *max_code, int *who, const char *what, char *err, size_t errlen);
/* In-place sums. */
bool mpi_comm_sum_f64 (mpi_comm *c, double *x, size_t n, const char *what, char *err, size_t errlen);
bool mpi_comm_gather_u64 (mpi_comm *c, uint64_t x, uint64_t *all, const char *what, char *err, size_t errlen);

/* Bucketed all-reduce: start a sum of n floats in place, poke progress, wait for one. At most MPI_COMM_MAX_PENDING
 * pending at once. */
enum { MPI_COMM_MAX_PENDING = 64 };
bool mpi_comm_sum_f32_start (mpi_comm *c, float *x, size_t n, int *handle, char *err, size_t errlen);
void mpi_comm_progress (mpi_comm *c);
bool mpi_comm_wait (mpi_comm *c, int handle, const char *what, char *err, size_t errlen);

/* A work counter shared by all ranks (MPI one-sided atomic fetch-and-add on rank 0). c must not be NULL. Collective
 * to create and to free. */
bool mpi_comm_counter_create (mpi_comm *c, char *err, size_t errlen);
/* The next value (0, 1, 2, ... over all ranks together). */
int64_t mpi_comm_counter_next (mpi_comm *c);
void mpi_comm_counter_free (mpi_comm *c);

#endif
