"""Command-line interface: ``autodl search | resume | show``."""
