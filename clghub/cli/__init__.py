"""The command line (Typer): thin commands over library calls."""
