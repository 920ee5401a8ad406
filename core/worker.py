"""``python -m core.worker REQUEST ANSWER``: the child processes' entry (``core.proc.worker``), by
the name that tools look for (a leftover worker is found by its command line)."""

import sys

from core.proc.worker import main

if __name__ == "__main__":
    main(sys.argv[1:])
