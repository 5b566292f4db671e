"""JambaTalk model core: the network, checkpoints, inference, worker and command line."""

import os

# torch's OpenMP runtime (libgomp on Linux) reads this once, when torch is first imported, so it must be
# set before any torch import. Spinning OpenMP workers (the default) lose their core to any other busy
# process (Blender, a second job) and then every parallel region waits a scheduler slice for them: on a
# 2-core VM with one other busy process the small preset ran 6x and vocaset 2x slower. Sleeping workers
# cost nothing measurable on an idle machine. A value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
