"""Bridges to other tools (Optuna). Each module imports its tool only when used."""
