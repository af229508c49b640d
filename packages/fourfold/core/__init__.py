"""Shared by two papers or more: CLI, training loop, run folders, seeding, plots, tables. Imports no paper."""
