"""`python -m kota` is the `kota` command."""

import sys

from kota.cli import main

sys.exit(main())
