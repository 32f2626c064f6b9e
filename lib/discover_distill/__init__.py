"""Discover->Distill: the one shared library behind scripts/ and paper/ (see DESIGN.md)."""

__version__ = "0.1.0"
