"""The bridge writing every log entry on its own as it is logged (``logs.HOLD_SECONDS = 0``).

For one figure only: what holding entries while requests are in flight, and writing them together,
saves (no target is judged against it). Everything else is the bridge itself (main.py), served
exactly like it.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from segment_novu import logs  # noqa: E402

logs.HOLD_SECONDS = 0.0

from main import handler  # noqa: E402,F401  (functions-framework's --target)
