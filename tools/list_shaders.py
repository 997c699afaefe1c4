#!/usr/bin/env python3
"""Print the names of every shaders/*.comp (used by shaders/meson.build)."""
import os, sys
d = sys.argv[1]
print("\n".join(sorted(f[:-5] for f in os.listdir(d) if f.endswith(".comp"))))
