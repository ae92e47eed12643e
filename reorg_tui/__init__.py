"""reorg-tui: a file-reorganization daemon and operations console."""

__version__ = "0.1.0"
