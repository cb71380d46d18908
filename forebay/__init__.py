"""Forebay: an API gateway that keeps one origin API fast and whole under load."""

__version__ = "0.1.0.dev0"
