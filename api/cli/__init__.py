"""The ``wangge`` command line (typer + rich)."""
