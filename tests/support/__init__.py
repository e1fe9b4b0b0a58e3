"""Helpers shared by the tests, imported as a library (`from tests.support.runs import ...`).

conftest.py keeps only the fixtures; everything a test imports lives here:
`paths` (the checkout), `data` (image sets), `runs` (configs, run folders, the in-process CLI),
`processes` (the CLI in a subprocess), `tui` (the console's test doubles), `tiny_net`.
"""
