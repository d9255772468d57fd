"""Benchmarks (make bench): each writes bench/results/<name>.json.

Every benchmark process and the web processes it starts write their audit
checkpoints (engine/store/checkpoints.py) to a folder of their own: the
throwaway databases are copies of one cached set-up, so they share a chain id,
and a checkpoint one copy wrote would not agree with the next copy's chain
("audit checkpoint refused"). An operator's QUORUM_CHECKPOINT_DIR is kept.
"""

import os
import tempfile

os.environ.setdefault("QUORUM_CHECKPOINT_DIR",
                      tempfile.mkdtemp(prefix="quorum-bench-checkpoints-"))
