/* The op table: one row per op, from the family lists. A family whose .c file is not built
 * (CEL_HAVE_<family> 0) leaves its rows empty; using such an op is a clear "not available" error. */
#include "../internal.h"

#define CEL_OP(e, nm, prefix) [e] = { nm, prefix##_infer, prefix##_record, prefix##_backward },
#define CEL_OP_NOGRAD(e, nm, prefix) [e] = { nm, prefix##_infer, prefix##_record, NULL },

const cel_op_info cel_op_table[CEL_OP_COUNT] = {
  [CEL_OP_NONE] = { "none", NULL, NULL, NULL },
#if CEL_HAVE_elementwise
#include "elementwise.def"
#endif
#if CEL_HAVE_activation
#include "activation.def"
#endif
#if CEL_HAVE_channels
#include "channels.def"
#endif
#if CEL_HAVE_resize
#include "resize.def"
#endif
#if CEL_HAVE_conv
#include "conv.def"
#endif
#if CEL_HAVE_conv_transpose
#include "conv_transpose.def"
#endif
#if CEL_HAVE_norm
#include "norm.def"
#endif
#if CEL_HAVE_adain
#include "adain.def"
#endif
#if CEL_HAVE_loss
#include "loss.def"
#endif
#if CEL_HAVE_spectral_norm
#include "spectral_norm.def"
#endif
#if CEL_HAVE_optimizer
#include "optimizer.def"
#endif
#if CEL_HAVE_spatial
#include "spatial.def"
#endif
};
