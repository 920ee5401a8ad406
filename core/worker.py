"""Entry point of the child processes started by ``core.child.call_in_backend``.

Kept apart from ``core.child`` so that ``python -m core.worker`` does not re-run a module that
``import core`` has already loaded.
"""

import sys

from core.child import main

if __name__ == "__main__":
    main(sys.argv[1:])
