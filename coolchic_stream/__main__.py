"""``python -m coolchic_stream``: the coolchic-stream command line."""

from .cli import main

raise SystemExit(main())
