/* Data-parallel training over MPI ranks (docs/scaling.md).
 *
 * Every rank holds the whole model and trains on its shard of each global batch: rank r takes samples
 * [r B, (r + 1) B) of the global batch of N B samples, whose order is the single-process order for batch N B. Its
 * step graph is built with external_optimizer: forward and backward only, the gradients as outputs. Then the ranks
 * agree on success (any rank's failure stops all of them, with its message), average their losses, and average
 * their gradients with an all-reduce in buckets of about 4 MiB, each started as soon as its gradients are
 * downloaded; Adam runs on the host, bucket by bucket as each all-reduce completes, on a host master copy of the
 * parameters (the same float arithmetic as the adam shader), and the new parameters are uploaded for the next step.
 *
 * The core records one command buffer per graph and cel_graph_run waits for all of it, so the all-reduce cannot
 * start while the backward pass still runs: the overlap is with the gradient download and the optimizer, not with
 * the backward. Every rank computes the same update from the same averaged gradients, so the weights stay equal
 * bit for bit; train_parallel_check compares a hash of them across ranks. */
#ifndef CELGAN_TRAIN_PARALLEL_H
#define CELGAN_TRAIN_PARALLEL_H

#include "mpi_comm.h"
#include "train_data.h"
#include "train_net.h"

typedef struct train_parallel train_parallel;

/* NULL when out of memory. comm has more than one rank. */
train_parallel *train_parallel_create (mpi_comm *comm);
void train_parallel_destroy (train_parallel *p);

/* After each train_graph_build (with external_optimizer): finds each parameter and its Adam moments in the store
 * (moments absent are added as zeros) and lays out the gradient buckets. */
bool train_parallel_bind (train_parallel *p, const train_graph *tg, host_store *state, char *err, size_t errlen);

/* One data-parallel step, called by every rank. b is this rank's shard, or NULL when it could not be built (then
 * local_err says why). Runs the graph, agrees with the other ranks, averages losses and gradients, steps Adam and
 * uploads the parameters. Returns 0, or the exit code the run stops with (every rank gets the same one, except
 * EXIT_COMM for an MPI failure); err holds the sentence to print, by this rank when *here, else by rank 0. */
int train_parallel_step (train_parallel *p, train_graph *tg, host_store *state, const train_batch *b, const char *local_err,
                         int64_t step, float lr_g, float lr_d, int64_t t_g, int64_t t_d, const train_setup *s,
                         double losses[LOSS_COUNT], bool *here, char *err, size_t errlen);

/* Compares a hash of the parameters across ranks. 0, or EXIT_COMM with a sentence naming the ranks that differ. */
int train_parallel_check (train_parallel *p, const host_store *state, int64_t step, char *err, size_t errlen);

/* Bytes of gradients all-reduced per step, buckets, and the mean seconds per step spent in the graph, waiting for
 * the slowest rank (the agreement and the loss all-reduce), and in the exchange (download, gradient all-reduce,
 * Adam, upload) over the steps so far. */
void train_parallel_stats (const train_parallel *p, uint64_t *bytes, int32_t *buckets, double *compute_s,
                           double *wait_s, double *exchange_s);

#endif
