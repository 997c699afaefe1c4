/* MPI for the celgan command (mpi_comm.h). Everything MPI-specific is in this file; without MPI it compiles to the
 * single-rank answers. */
#include "mpi_comm.h"
#include "cli.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if CELGAN_HAVE_MPI
#include <mpi.h>
#endif
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

struct mpi_comm {
  int rank, size, local_rank, local_size;
  double timeout_s;
#if CELGAN_HAVE_MPI
  MPI_Request pending[MPI_COMM_MAX_PENDING];
  bool used[MPI_COMM_MAX_PENDING];
  MPI_Win win;
  int64_t *counter;
  bool have_win;
#endif
};

bool mpi_comm_available (void) {
  return CELGAN_HAVE_MPI;
}

int mpi_comm_rank (const mpi_comm *c) {
  return c ? c->rank : 0;
}

int mpi_comm_size (const mpi_comm *c) {
  return c ? c->size : 1;
}

int mpi_comm_local_rank (const mpi_comm *c) {
  return c ? c->local_rank : 0;
}

const char *mpi_comm_device (const mpi_comm *c, const char *request, char *buf, size_t len) {
  int local = mpi_comm_local_rank (c);
  if (request && strchr (request, ',')) {
    /* the local rank's entry of the list (wrapping around) */
    int count = 1;
    for (const char *p = request; *p; p++)
      count += *p == ',';
    const char *p = request;
    for (int i = 0; i < local % count; i++)
      p = strchr (p, ',') + 1;
    size_t n = strcspn (p, ",");
    snprintf (buf, len, "%.*s", (int) n, p);
    return buf;
  }
  if (request || !c || c->local_size < 2)
    return request;
  cel_device_info infos[16];
  uint32_t count = 0, candidates[16], n_cand = 0, n_discrete = 0;
  if (cel_device_list (infos, 16, &count, NULL, 0) != CEL_OK || count == 0)
    return NULL; /* the context reports the error */
  if (count > 16)
    count = 16;
  for (uint32_t i = 0; i < count; i++)
    n_discrete += infos[i].is_discrete;
  for (uint32_t i = 0; i < count; i++)
    if (!n_discrete || infos[i].is_discrete)
      candidates[n_cand++] = infos[i].index;
  if (n_cand < 2)
    return NULL;
  snprintf (buf, len, "%u", candidates[local % n_cand]);
  return buf;
}

/* ---- the note printed when the launcher stops this rank ------------------------------------------------ */

static char notes[2][1024];
static volatile sig_atomic_t note_index;
static char term_prefix[128];

void mpi_comm_set_note (mpi_comm *c, const char *fmt, ...) {
  if (!c)
    return;
  int next = !note_index; /* write the buffer the handler does not read, then switch */
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (notes[next], sizeof notes[next], fmt, ap);
  va_end (ap);
  note_index = next;
}

static void on_sigterm (int sig) {
  (void) sig;
  const char *note = notes[note_index];
  ssize_t r = write (STDERR_FILENO, term_prefix, strlen (term_prefix));
  if (*note) {
    r = write (STDERR_FILENO, "; ", 2);
    r = write (STDERR_FILENO, note, strlen (note));
  }
  r = write (STDERR_FILENO, "\n", 1);
  (void) r;
  _exit (EXIT_COMM);
}

#if CELGAN_HAVE_MPI

static double now (void) {
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static bool mpi_failed (int e, const char *what, char *err, size_t errlen) {
  if (e == MPI_SUCCESS)
    return false;
  char s[MPI_MAX_ERROR_STRING];
  int n = 0;
  MPI_Error_string (e, s, &n);
  snprintf (err, errlen, "MPI error in %s: %s", what, s);
  return true;
}

static bool launched_by_mpi (void) {
  const char *force = getenv ("CELGAN_MPI");
  if (force && *force)
    return strcmp (force, "0") != 0;
  return getenv ("OMPI_COMM_WORLD_SIZE") || getenv ("PMI_SIZE") || getenv ("PMIX_RANK");
}

mpi_comm *mpi_comm_start (double timeout_s) {
  if (!launched_by_mpi ())
    return NULL;
  mpi_comm *c = calloc (1, sizeof *c);
  if (!c) {
    cli_error ("out of memory");
    return NULL;
  }
  int provided, flag = 0, started;
  MPI_Initialized (&flag);
#if defined(__SANITIZE_ADDRESS__)
  __lsan_disable (); /* what MPI allocates for itself while starting is its own business (tools/lsan.supp) */
#endif
  started = flag || MPI_Init_thread (NULL, NULL, MPI_THREAD_FUNNELED, &provided) == MPI_SUCCESS;
#if defined(__SANITIZE_ADDRESS__)
  __lsan_enable ();
#endif
  if (!started) {
    cli_error ("cannot start MPI");
    free (c);
    return NULL;
  }
  MPI_Comm_set_errhandler (MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank (MPI_COMM_WORLD, &c->rank);
  MPI_Comm_size (MPI_COMM_WORLD, &c->size);
  MPI_Comm node;
  c->local_size = 1;
  if (MPI_Comm_split_type (MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
    MPI_Comm_rank (node, &c->local_rank);
    MPI_Comm_size (node, &c->local_size);
    MPI_Comm_free (&node);
  }
  c->timeout_s = timeout_s;
  if (c->size > 1)
    cli_set_rank (c->rank);
  snprintf (term_prefix, sizeof term_prefix, "celgan: rank %d: stopped by the MPI launcher (another rank failed or "
            "the job was cancelled)", c->rank);
  struct sigaction sa = { .sa_handler = on_sigterm };
  sigemptyset (&sa.sa_mask);
  sigaction (SIGTERM, &sa, NULL);
  return c;
}

void mpi_comm_finish (mpi_comm *c, int exit_code, bool all_know) {
  if (!c)
    return;
  signal (SIGTERM, SIG_DFL);
  if (exit_code != 0 && !all_know && c->size > 1) {
    fflush (stderr);
    MPI_Abort (MPI_COMM_WORLD, exit_code); /* the others are waiting for this rank: the launcher stops them */
  }
  mpi_comm_counter_free (c);
  free (c);
#if defined(__SANITIZE_ADDRESS__)
  /* The leak check now, while MPI's own memory is still reachable: MPI_Finalize unloads Open MPI's components,
   * whose allocations would then come back from "<unknown module>" frames that no suppression can name. The
   * command's memory is all freed by now; the end-of-process check is skipped after this one. */
  __lsan_do_leak_check ();
#endif
  MPI_Finalize ();
}

/* Waits for a request, polling gently (two ranks may share a core with a CPU Vulkan driver) up to the deadline. */
static bool wait_request (mpi_comm *c, MPI_Request *r, const char *what, char *err, size_t errlen) {
  double t0 = now ();
  for (unsigned spins = 0;; spins++) {
    int done = 0, e = MPI_Test (r, &done, MPI_STATUS_IGNORE);
    if (mpi_failed (e, what, err, errlen))
      return false;
    if (done)
      return true;
    if (now () - t0 > c->timeout_s) {
      const char *note = notes[note_index];
      fprintf (stderr, "\ncelgan: rank %d: no answer from the other ranks for %.0f s in %s: a rank hung or died; "
               "stopping the job (see --comm-timeout)%s%s\n", c->rank, c->timeout_s, what, *note ? "; " : "", note);
      fflush (stderr);
      signal (SIGTERM, SIG_DFL); /* the launcher's SIGTERM is the answer to this abort: nothing more to say */
      MPI_Abort (MPI_COMM_WORLD, EXIT_COMM);
      _exit (EXIT_COMM);
    }
    if (spins > 200) {
      struct timespec ts = { 0, 200000 };
      nanosleep (&ts, NULL);
    }
  }
}

bool mpi_comm_max_code (mpi_comm *c, int code, int *max_code, int *who, const char *what, char *err, size_t errlen) {
  struct { int value, rank; } in = { code, mpi_comm_rank (c) }, out = in;
  if (c) {
    MPI_Request r;
    if (mpi_failed (MPI_Iallreduce (&in, &out, 1, MPI_2INT, MPI_MAXLOC, MPI_COMM_WORLD, &r), what, err, errlen) ||
        !wait_request (c, &r, what, err, errlen))
      return false;
  }
  *max_code = out.value;
  *who = out.rank;
  return true;
}

bool mpi_comm_sum_f64 (mpi_comm *c, double *x, size_t n, const char *what, char *err, size_t errlen) {
  MPI_Request r;
  return !c || (!mpi_failed (MPI_Iallreduce (MPI_IN_PLACE, x, (int) n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &r), what,
                             err, errlen) &&
                wait_request (c, &r, what, err, errlen));
}

bool mpi_comm_gather_u64 (mpi_comm *c, uint64_t x, uint64_t *all, const char *what, char *err, size_t errlen) {
  MPI_Request r;
  all[0] = x;
  return !c || (!mpi_failed (MPI_Iallgather (&x, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD, &r), what, err,
                             errlen) &&
                wait_request (c, &r, what, err, errlen));
}

bool mpi_comm_sum_f32_start (mpi_comm *c, float *x, size_t n, int *handle, char *err, size_t errlen) {
  int h = 0;
  while (h < MPI_COMM_MAX_PENDING && c->used[h])
    h++;
  if (h == MPI_COMM_MAX_PENDING) {
    snprintf (err, errlen, "internal: more than %d pending all-reduces", MPI_COMM_MAX_PENDING);
    return false;
  }
  if (mpi_failed (MPI_Iallreduce (MPI_IN_PLACE, x, (int) n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &c->pending[h]),
                  "the gradient all-reduce", err, errlen))
    return false;
  c->used[h] = true;
  *handle = h;
  return true;
}

void mpi_comm_progress (mpi_comm *c) {
  for (int h = 0; c && h < MPI_COMM_MAX_PENDING; h++)
    if (c->used[h]) {
      int done;
      MPI_Test (&c->pending[h], &done, MPI_STATUS_IGNORE); /* completion is seen again by MPI_Test in wait */
      return;
    }
}

bool mpi_comm_wait (mpi_comm *c, int handle, const char *what, char *err, size_t errlen) {
  c->used[handle] = false;
  return wait_request (c, &c->pending[handle], what, err, errlen);
}

bool mpi_comm_counter_create (mpi_comm *c, char *err, size_t errlen) {
  MPI_Aint bytes = c->rank == 0 ? (MPI_Aint) sizeof (int64_t) : 0;
  if (mpi_failed (MPI_Win_allocate (bytes, sizeof (int64_t), MPI_INFO_NULL, MPI_COMM_WORLD, &c->counter, &c->win),
                  "creating the work counter", err, errlen))
    return false;
  c->have_win = true;
  if (c->rank == 0)
    *c->counter = 0;
  MPI_Request r;
  if (mpi_failed (MPI_Ibarrier (MPI_COMM_WORLD, &r), "creating the work counter", err, errlen) ||
      !wait_request (c, &r, "creating the work counter", err, errlen))
    return false;
  return !mpi_failed (MPI_Win_lock_all (0, c->win), "creating the work counter", err, errlen);
}

int64_t mpi_comm_counter_next (mpi_comm *c) {
  int64_t one = 1, value = -1;
  if (MPI_Fetch_and_op (&one, &value, MPI_INT64_T, 0, 0, MPI_SUM, c->win) != MPI_SUCCESS ||
      MPI_Win_flush (0, c->win) != MPI_SUCCESS)
    return -1;
  return value;
}

void mpi_comm_counter_free (mpi_comm *c) {
  if (!c || !c->have_win)
    return;
  MPI_Win_unlock_all (c->win);
  MPI_Win_free (&c->win);
  c->have_win = false;
}

#else /* no MPI: one rank */

mpi_comm *mpi_comm_start (double timeout_s) {
  (void) timeout_s;
  (void) on_sigterm;
  return NULL;
}

void mpi_comm_finish (mpi_comm *c, int exit_code, bool all_know) {
  (void) exit_code;
  (void) all_know;
  free (c);
}

bool mpi_comm_max_code (mpi_comm *c, int code, int *max_code, int *who, const char *what, char *err, size_t errlen) {
  (void) c, (void) what, (void) err, (void) errlen;
  *max_code = code;
  *who = 0;
  return true;
}

bool mpi_comm_sum_f64 (mpi_comm *c, double *x, size_t n, const char *what, char *err, size_t errlen) {
  (void) c, (void) x, (void) n, (void) what, (void) err, (void) errlen;
  return true;
}

bool mpi_comm_gather_u64 (mpi_comm *c, uint64_t x, uint64_t *all, const char *what, char *err, size_t errlen) {
  (void) c, (void) what, (void) err, (void) errlen;
  all[0] = x;
  return true;
}

bool mpi_comm_sum_f32_start (mpi_comm *c, float *x, size_t n, int *handle, char *err, size_t errlen) {
  (void) c, (void) x, (void) n, (void) err, (void) errlen;
  *handle = 0;
  return true;
}

void mpi_comm_progress (mpi_comm *c) {
  (void) c;
}

bool mpi_comm_wait (mpi_comm *c, int handle, const char *what, char *err, size_t errlen) {
  (void) c, (void) handle, (void) what, (void) err, (void) errlen;
  return true;
}

bool mpi_comm_counter_create (mpi_comm *c, char *err, size_t errlen) {
  (void) c;
  snprintf (err, errlen, "built without MPI");
  return false;
}

int64_t mpi_comm_counter_next (mpi_comm *c) {
  (void) c;
  return -1;
}

void mpi_comm_counter_free (mpi_comm *c) {
  (void) c;
}

#endif
