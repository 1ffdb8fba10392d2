"""``python -m enrich``: the same as the ``enrich`` command."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
