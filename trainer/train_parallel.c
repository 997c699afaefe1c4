/* Data-parallel training steps: gradient buckets, the all-reduce, host Adam, the weight check (train_parallel.h). */
#include "train_parallel.h"
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A parameter: its tensors in the store (indices, stable while the store only grows) and its gradient's place in
 * the flat gradient buffer. */
typedef struct par_param {
  size_t param, m, v;
  size_t offset, count;
  cel_node node, grad;
  bool disc;
} par_param;

/* Parameters [first, end) and their floats [offset, offset + count) of the flat buffer. */
typedef struct bucket {
  int32_t first, end;
  size_t offset, count;
  int handle;
} bucket;

struct train_parallel {
  mpi_comm *comm;
  par_param *params;
  int32_t n_params;
  bucket *buckets;
  int32_t n_buckets;
  float *flat; /* every gradient, in parameter order */
  size_t flat_count;
  double compute_s, wait_s, exchange_s;
  int64_t steps;
};

static double now (void) {
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

train_parallel *train_parallel_create (mpi_comm *comm) {
  train_parallel *p = calloc (1, sizeof *p);
  if (p)
    p->comm = comm;
  return p;
}

void train_parallel_destroy (train_parallel *p) {
  if (!p)
    return;
  free (p->params);
  free (p->buckets);
  free (p->flat);
  free (p);
}

/* The index of a store tensor, added as zeros of `shape` when absent. */
static bool store_index (host_store *state, const char *name, cel_shape shape, size_t *out) {
  host_tensor *t = host_store_find (state, name);
  if (!t && !(t = host_store_put (state, name, shape, NULL)))
    return false;
  *out = (size_t) (t - state->t);
  return true;
}

bool train_parallel_bind (train_parallel *p, const train_graph *tg, host_store *state, char *err, size_t errlen) {
  size_t bucket_bytes = 4u << 20;
  const char *env = getenv ("CELGAN_MPI_BUCKET_KB"); /* for benchmarks */
  if (env && atol (env) > 0)
    bucket_bytes = (size_t) atol (env) << 10;
  free (p->params);
  free (p->buckets);
  free (p->flat);
  p->params = calloc ((size_t) tg->n_grads + 1, sizeof *p->params);
  p->buckets = calloc ((size_t) tg->n_grads + 1, sizeof *p->buckets);
  p->n_params = p->n_buckets = 0;
  p->flat = NULL;
  p->flat_count = 0;
  if (!p->params || !p->buckets)
    goto oom;
  for (int32_t i = 0; i < tg->n_grads; i++) {
    const train_grad *g = &tg->grads[i];
    par_param *q = &p->params[i];
    host_tensor *t = host_store_find (state, g->store_name);
    const char *slash = strchr (g->store_name, '/');
    if (!t || !slash) {
      snprintf (err, errlen, "internal: no parameter '%s' in the training state", g->store_name);
      return false;
    }
    char mn[300], vn[300];
    snprintf (mn, sizeof mn, "%.*s.m%s", (int) (slash - g->store_name), g->store_name, slash);
    snprintf (vn, sizeof vn, "%.*s.v%s", (int) (slash - g->store_name), g->store_name, slash);
    cel_shape shape = t->shape;
    q->param = (size_t) (t - state->t);
    if (!store_index (state, mn, shape, &q->m) || !store_index (state, vn, shape, &q->v))
      goto oom;
    q->count = state->t[q->param].count;
    q->offset = p->flat_count;
    q->node = g->param;
    q->grad = g->grad;
    q->disc = g->disc;
    p->flat_count += q->count;
    p->n_params++;
  }
  if (!(p->flat = malloc ((p->flat_count + 1) * sizeof *p->flat)))
    goto oom;
  /* buckets: consecutive parameters up to about bucket_bytes each */
  for (int32_t i = 0; i < p->n_params; i++) {
    bucket *b = &p->buckets[p->n_buckets];
    if (b->end == b->first) {
      b->first = i;
      b->offset = p->params[i].offset;
    }
    b->end = i + 1;
    b->count += p->params[i].count;
    if (b->count * sizeof (float) >= bucket_bytes || i + 1 == p->n_params)
      p->n_buckets++;
  }
  return true;
oom:
  snprintf (err, errlen, "out of host memory");
  return false;
}

/* One Adam step on the host with the adam shader's float arithmetic (shaders/adam.comp). */
static void adam_host (float *x, const float *g, float *m, float *v, size_t n, const float hyper[3], const train_setup *s) {
  for (size_t i = 0; i < n; i++) {
    float mi = s->beta1 * m[i] + (1.0f - s->beta1) * g[i];
    float vi = s->beta2 * v[i] + (1.0f - s->beta2) * g[i] * g[i];
    m[i] = mi;
    v[i] = vi;
    x[i] = x[i] - hyper[0] / hyper[1] * mi / (sqrtf (vi) / sqrtf (hyper[2]) + s->eps);
  }
}

int train_parallel_step (train_parallel *p, train_graph *tg, host_store *state, const train_batch *b, const char *local_err,
                         int64_t step, float lr_g, float lr_d, int64_t t_g, int64_t t_d, const train_setup *s,
                         double losses[LOSS_COUNT], bool *here, char *err, size_t errlen) {
  int ranks = mpi_comm_size (p->comm);
  char mine[1024] = "";
  int code = 0;
  double t0 = now ();
  *here = false;
  for (int i = 0; i < LOSS_COUNT; i++)
    losses[i] = 0;
  if (!b) {
    snprintf (mine, sizeof mine, "%s", local_err);
    code = EXIT_IO;
  } else {
    cel_status st = train_graph_step (tg, b->photo, b->style, b->gray, b->smooth, lr_g, lr_d, t_g, t_d, s, losses);
    if (st) {
      snprintf (mine, sizeof mine, "%s", cel_context_last_error (cel_graph_context (tg->g)));
      code = cli_exit_code (st);
    }
  }
  double t1 = now ();

  /* agree: the worst code and the lowest rank that has it; then the mean losses */
  int worst, who;
  if (!mpi_comm_max_code (p->comm, code, &worst, &who, "the step agreement", err, errlen))
    return EXIT_COMM;
  if (worst) {
    *here = code != 0;
    if (code)
      snprintf (err, errlen, "step %lld: %s", (long long) step + 1, mine);
    else
      snprintf (err, errlen, "rank %d failed at step %lld (its message is above): all ranks stop", who,
                (long long) step + 1);
    return worst;
  }
  if (!mpi_comm_sum_f64 (p->comm, losses, LOSS_COUNT, "the loss all-reduce", err, errlen))
    return EXIT_COMM;
  for (int i = 0; i < LOSS_COUNT; i++)
    losses[i] /= ranks;
  double t2 = now ();

  /* gradients: download each bucket and start its all-reduce, then finish them in order with Adam on the host */
  for (int32_t k = 0; k < p->n_buckets; k++) {
    bucket *bk = &p->buckets[k];
    for (int32_t i = bk->first; i < bk->end; i++) {
      par_param *q = &p->params[i];
      cel_status st = cel_graph_get_data (tg->g, q->grad, p->flat + q->offset, q->count);
      if (st) { /* cannot happen unless the device was lost: the others would wait, so end the job */
        snprintf (err, errlen, "reading the gradients: %s", cel_context_last_error (cel_graph_context (tg->g)));
        *here = true;
        return EXIT_COMM;
      }
      mpi_comm_progress (p->comm);
    }
    if (!mpi_comm_sum_f32_start (p->comm, p->flat + bk->offset, bk->count, &bk->handle, err, errlen))
      return EXIT_COMM;
  }
  float hg[3] = { lr_g, (float) (1 - pow (s->beta1, (double) t_g)), (float) (1 - pow (s->beta2, (double) t_g)) };
  float hd[3] = { lr_d, (float) (1 - pow (s->beta1, (double) t_d)), (float) (1 - pow (s->beta2, (double) t_d)) };
  float scale = 1.0f / (float) ranks;
  for (int32_t k = 0; k < p->n_buckets; k++) {
    bucket *bk = &p->buckets[k];
    if (!mpi_comm_wait (p->comm, bk->handle, "the gradient all-reduce", err, errlen))
      return EXIT_COMM;
    for (size_t i = 0; i < bk->count; i++)
      p->flat[bk->offset + i] *= scale;
    for (int32_t i = bk->first; i < bk->end; i++) {
      par_param *q = &p->params[i];
      host_tensor *x = &state->t[q->param];
      adam_host (x->data, p->flat + q->offset, state->t[q->m].data, state->t[q->v].data, q->count, q->disc ? hd : hg, s);
      cel_status st = cel_graph_set_data (tg->g, q->node, x->data, x->count);
      if (st) {
        snprintf (err, errlen, "uploading the parameters: %s", cel_context_last_error (cel_graph_context (tg->g)));
        *here = true;
        return EXIT_COMM;
      }
    }
  }
  p->compute_s += t1 - t0;
  p->wait_s += t2 - t1;
  p->exchange_s += now () - t2;
  p->steps++;
  return 0;
}

/* FNV-1a over the bytes of every parameter of the graph, in order. */
static uint64_t weights_hash (const train_parallel *p, const host_store *state) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int32_t i = 0; i < p->n_params; i++) {
    const host_tensor *t = &state->t[p->params[i].param];
    const unsigned char *c = (const unsigned char *) t->data;
    for (size_t k = 0; k < t->count * sizeof (float); k++)
      h = (h ^ c[k]) * 0x100000001b3ull;
  }
  return h;
}

int train_parallel_check (train_parallel *p, const host_store *state, int64_t step, char *err, size_t errlen) {
  int ranks = mpi_comm_size (p->comm);
  uint64_t *all = calloc ((size_t) ranks, sizeof *all);
  if (!all) {
    snprintf (err, errlen, "out of host memory");
    return EXIT_COMM;
  }
  uint64_t mine = weights_hash (p, state);
  if (getenv ("CELGAN_TEST_PERTURB_RANK") && atoi (getenv ("CELGAN_TEST_PERTURB_RANK")) == mpi_comm_rank (p->comm))
    mine ^= 1; /* tests: pretend this rank's weights drifted */
  int code = 0;
  if (!mpi_comm_gather_u64 (p->comm, mine, all, "the weight check", err, errlen)) {
    code = EXIT_COMM;
  } else {
    size_t len = 0;
    for (int r = 1; r < ranks; r++)
      if (all[r] != all[0]) {
        if (!code)
          len = (size_t) snprintf (err, errlen, "%s %lld the weights differ across ranks (hash of rank 0 %016llx;",
                                   step ? "after step" : "at the start, step", (long long) step,
                                   (unsigned long long) all[0]);
        if (len < errlen)
          len += (size_t) snprintf (err + len, errlen - len, " rank %d %016llx;", r, (unsigned long long) all[r]);
        code = EXIT_COMM;
      }
    if (code && len < errlen)
      snprintf (err + len, errlen - len, " a device computes differently or memory was corrupted): all ranks stop");
  }
  free (all);
  return code;
}

void train_parallel_stats (const train_parallel *p, uint64_t *bytes, int32_t *buckets, double *compute_s,
                           double *wait_s, double *exchange_s) {
  *bytes = (uint64_t) p->flat_count * sizeof (float);
  *buckets = p->n_buckets;
  *compute_s = p->steps ? p->compute_s / (double) p->steps : 0;
  *wait_s = p->steps ? p->wait_s / (double) p->steps : 0;
  *exchange_s = p->steps ? p->exchange_s / (double) p->steps : 0;
}
