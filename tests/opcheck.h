/* Test harness for ops: TAP output, a shared context, random data, and the generic op check that compares
 * the GPU forward with the C reference, the GPU backward with the reference backward, and both with central
 * finite differences of the reference forward (in double precision). */
#ifndef CELGAN_OPCHECK_H
#define CELGAN_OPCHECK_H

#include "celgan.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- TAP -------------------------------------------------------------------------------------- */
/* Reports one test point; returns ok. The name should say the behaviour: "/conv2d/backward/weight". */
bool tap_ok (bool ok, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
void tap_diag (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
/* Reports one test point as skipped, with the reason ("ok N - name # SKIP reason"). */
void tap_skip (const char *reason, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
/* Prints the plan, checks that the validation layer stayed silent (one more test point), and returns
 * the exit status: 0 when every point passed. */
int tap_finish (void);
/* Skips the whole program with a reason (exit status 77 is not used: TAP "1..0 # SKIP"). */
int tap_skip_all (const char *reason);

/* ---- shared context and random numbers -------------------------------------------------------- */
/* The test context (device from CELGAN_TEST_DEVICE, validation from CELGAN_VALIDATION). Exits the program
 * with a TAP bail-out if no device can be opened. */
cel_context *oc_context (void);
void oc_rng_seed (uint64_t seed); /* also seeded from CELGAN_TEST_SEED, printed as a diagnostic */
uint64_t oc_rng_u64 (void);
int32_t oc_rand_int (int32_t lo, int32_t hi); /* inclusive */
double oc_rand_uniform (double lo, double hi);

/* ---- op checks -------------------------------------------------------------------------------- */
typedef void (*oc_ref_fwd) (const double *const *in, double *out, const void *ud);
/* din[i] is NULL for inputs whose gradient is not checked; write (not accumulate) the others. */
typedef void (*oc_ref_bwd) (const double *const *in, const double *dy, double *const *din, const void *ud);
typedef cel_status (*oc_build) (cel_graph *g, const cel_node *in, cel_node *out, const void *ud);

#define OC_MAX_IN 6

typedef struct oc_spec {
  const char *name; /* "/conv2d/stride2_reflect": test points append "/forward", "/backward/in1", ... */
  int n_in;
  cel_shape in_shape[OC_MAX_IN];
  bool in_param[OC_MAX_IN]; /* create as a parameter (gradient always computed) instead of an input */
  bool in_grad[OC_MAX_IN];  /* check this input's gradient (inputs get requires_grad) */
  double in_lo[OC_MAX_IN], in_hi[OC_MAX_IN]; /* random range; both 0 means [-1, 1] */
  cel_shape out_shape;      /* expected output shape (checked) */
  oc_build build;
  oc_ref_fwd fwd;
  oc_ref_bwd bwd; /* NULL: forward only */
  const void *ud;
  double tol;     /* GPU vs reference: |a - b| <= tol * (1 + |b|); 0 means 1e-4 */
  double fd_eps;  /* finite-difference step; 0 means 1e-3 */
  int fd_points;  /* elements probed per input; 0 means 6 */
  double dy_lo, dy_hi; /* range of the output gradient; both 0 means [-1, 1] (equal: a constant) */
} oc_spec;

/* Prepended to every spec's name by oc_check (a test's second pass: "storage_reads/..."). */
extern const char *oc_name_prefix;

/* Flips the context's way of reading inputs (cel_context_set_texel_reads) for a second pass of a test's cases;
 * *prefix names the new way ("storage_reads" or "texel_reads"). False where the device has only one way. */
bool oc_other_reads (const char **prefix);

/* A second pass through the blocked weight gradient's subgroupShuffle path (GPUs' subgroups wider than 8),
 * forced by the core's test switch (CELGAN_TEST_SUBGROUP_SHUFFLE): begin returns true where subgroups are 8 wide
 * with shuffle, else it reports a TAP skip named skip_name (wider subgroups took the shuffle in the first pass)
 * and returns false. On 8-wide subgroups the shuffle reads the lanes the broadcast reads: the pass checks the
 * shuffle's code, not the mapping of groups of 8 onto wider subgroups, which only GPU runs check. */
bool oc_forced_shuffle_begin (const char *skip_name);
void oc_forced_shuffle_end (void);

/* Per-shader profile of what a test ran: begin turns profiling on with cleared totals (false where the device
 * has no timestamps); take returns the report (cel_context_profile_report's text, to free) and turns it off. */
bool oc_profile_begin (void);
char *oc_profile_take (void);

/* Runs the checks of one spec; returns true if all its points passed. */
bool oc_check (const oc_spec *spec);

/* Helpers for references. */
static inline int64_t oc_count (cel_shape s) {
  return (int64_t) s.n * s.c * s.h * s.w;
}

#endif
