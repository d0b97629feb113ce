"""Perron: one deployment, many communes."""

__version__ = "0.1.0"
