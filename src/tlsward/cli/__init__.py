"""Ring 5: the ``tlsward`` command (typer + rich). Nothing imports this package."""
