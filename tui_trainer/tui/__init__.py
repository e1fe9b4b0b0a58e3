"""The Textual console: launch presets, watch a run live, browse and compare run folders.

Everything here sits on top of the core: runs start through `runs.launch.start_run` and are
read back through `runs.store`; nothing below this package imports textual.
"""
