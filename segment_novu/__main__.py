"""``python -m segment_novu``: the command-line tools (``check``, ``replay``); see ``cli``."""

from segment_novu.cli import main

raise SystemExit(main())
