#!/usr/bin/python3
"""Writes the fuzz_torch_pickle seed corpus into the folder given: two small legacy (non-zip) PyTorch
checkpoints of fixed random tensors, a flat state_dict and one nested in a dict (tools/fuzz.sh runs this;
generated, not committed)."""
import collections
import os
import sys

import torch

out = sys.argv[1]
g = torch.Generator().manual_seed(1)
sd = collections.OrderedDict([("conv.weight", torch.randn(4, 3, 3, 3, generator=g)),
                              ("conv.bias", torch.randn(4, generator=g)),
                              ("half", torch.randn(2, 2, generator=g).half())])
torch.save(sd, os.path.join(out, "state_dict.pth"), _use_new_zipfile_serialization=False)
torch.save({"iter": 1, "model": sd}, os.path.join(out, "nested.pth"), _use_new_zipfile_serialization=False)
