"""Widgets of the console: plots, the results table, the config form, picker and queue."""
