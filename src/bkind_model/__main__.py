"""``python -m bkind_model`` is the ``bkind`` command (as ``torchrun -m bkind_model`` needs)."""

import sys

from bkind_model.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
