"""Command-line interface: ``mirsearch <command>``; one module per command group."""
