"""``python -m segment_novu``: the command-line tools (``check``, ``replay``, ``subscriber-hash``); see ``cli``."""

from segment_novu.tools.cli import main

raise SystemExit(main())
