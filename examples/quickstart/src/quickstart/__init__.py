"""A tiny pipeline package used by the quickstart example."""
