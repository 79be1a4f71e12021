"""`python -m compiler` runs the dockwright command line (an unchanged project is answered by the fast path)."""

from .fastpath import run

run()
