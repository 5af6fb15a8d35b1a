"""``python -m pixcolor`` (and ``torchrun -m pixcolor``) run the command line."""

from __future__ import annotations

from pixcolor.cli import main

raise SystemExit(main())
