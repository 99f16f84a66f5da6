"""`python -m tribunal_client ...`: the `tribunal` command without its console script."""

from __future__ import annotations

from tribunal_client.cli import main

raise SystemExit(main())
