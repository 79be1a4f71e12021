"""Servers for the lock tests: a package index of generated wheels and a registry with the token flow."""
