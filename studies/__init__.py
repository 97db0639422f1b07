"""The example studies, installed as package data (``mixopt.studies``): ``mixopt init --example NAME`` copies
one into a folder, and ``mixopt study run`` with no config runs ``default`` from here."""
