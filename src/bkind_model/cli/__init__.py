"""The ``bkind`` command line: train, extract, evaluate, export, demo."""

from bkind_model.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
