"""Screens of the console: launch, watch and results (the app's modes), plus the run detail,
compare and confirm screens pushed over them."""
