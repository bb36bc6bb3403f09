"""``python -m clghub`` runs the command line."""

from clghub.cli.app import main

main()
