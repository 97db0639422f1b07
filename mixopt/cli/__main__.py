"""``python -m mixopt.cli`` runs the ``mixopt`` command."""

from mixopt.cli import main

main()
