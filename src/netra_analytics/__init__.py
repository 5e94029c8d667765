"""Netra Analytics: frontend analytics and event capture for AI products."""

__version__ = "0.1.0"
