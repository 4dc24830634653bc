"""Built-in search spaces (YAML), installed as ``autodl.search_spaces``; load with ``Space.load(name)``."""
