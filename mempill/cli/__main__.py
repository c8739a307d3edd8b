"""`python -m mempill.cli` is the `mempill` command."""

from mempill.cli.main import main

raise SystemExit(main())
