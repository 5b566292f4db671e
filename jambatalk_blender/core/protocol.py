"""The worker protocol's names and limits, written once (docs/protocol.md).

The extension's client and the worker (model_core/worker) both import this module, so the version, the
parameter header and its fields, the result headers and the .npy limits cannot drift apart; it is standard
library only, so Blender's Python and the worker's can both load it.
"""

from __future__ import annotations

import re

PROTOCOL_VERSION = 1
PARAMS_HEADER = "X-JambaTalk-Params"
PARAM_FIELDS = ("model", "subject", "start_s", "end_s", "strength", "smoothing_s", "dtype", "client", "output")
OUTPUTS = ("vertices", "weights")
NPY_MAGIC = b"\x93NUMPY"
MAX_NPY_HEADER_BYTES = 65536  # the worker's header is about 128 bytes; anything near this is not its result
RESULT_DTYPES = ("<f4", "<f2", ">f4", ">f2")  # float32 / float16; no object dtype, so no pickle, ever
RESULT_FILE_NAME = re.compile(r"[0-9A-Za-z_-]{1,128}\.npy")  # a bare name: no separators, no "..", no drive
# Result metadata: the reply headers of GET /jobs/{id}/result (the file hand-off sends the same as JSON fields).
RESULT_HEADERS = {"fps": "X-JambaTalk-Fps", "start_s": "X-JambaTalk-Start-Seconds", "frames": "X-JambaTalk-Frames",
                  "output": "X-JambaTalk-Output", "vertices": "X-JambaTalk-Vertices",
                  "channels": "X-JambaTalk-Channels"}
