"""The ``esb`` command line: one module per command."""
