"""``python -m attrib.testing.proxy --help``."""

from attrib.testing.proxy.cli import main

raise SystemExit(main())
