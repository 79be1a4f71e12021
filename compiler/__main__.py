"""`python -m compiler` runs the dockwright command line."""

from .cli import run

run()
