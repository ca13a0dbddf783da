"""Subcommands of the ``agent-recovery`` command line (one module each)."""
