/* Times MPI_Allreduce (sum of floats, in place) of the sizes given in bytes, as the data-parallel trainer uses it:
 * the median of 20 runs after 3 warm-ups, printed by rank 0 as "allreduce bytes=B ms=T algbw_GBps=G busbw_GBps=H"
 * (algorithm bandwidth bytes / time; bus bandwidth 2 (N - 1) / N of it, what a ring moves per rank).
 * Built and run by bench/mpi_scaling.sh with mpicc; not part of the celgan build. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp_double (const void *a, const void *b) {
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

int main (int argc, char **argv) {
  MPI_Init (&argc, &argv);
  int rank, size;
  MPI_Comm_rank (MPI_COMM_WORLD, &rank);
  MPI_Comm_size (MPI_COMM_WORLD, &size);
  for (int a = 1; a < argc; a++) {
    long bytes = atol (argv[a]);
    int n = (int) (bytes / 4);
    float *x = calloc ((size_t) n + 1, sizeof *x);
    double t[23];
    for (int r = 0; r < 23; r++) {
      MPI_Barrier (MPI_COMM_WORLD);
      double t0 = MPI_Wtime ();
      MPI_Allreduce (MPI_IN_PLACE, x, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      t[r] = MPI_Wtime () - t0;
    }
    qsort (t + 3, 20, sizeof *t, cmp_double);
    double med = t[3 + 10];
    if (rank == 0)
      printf ("allreduce bytes=%ld ranks=%d ms=%.3f algbw_GBps=%.2f busbw_GBps=%.2f\n", bytes, size, med * 1e3,
              bytes / med / 1e9, 2.0 * (size - 1) / size * bytes / med / 1e9);
    free (x);
  }
  MPI_Finalize ();
  return 0;
}
