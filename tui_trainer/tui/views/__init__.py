"""The main screen's five views (Launch, Watch, Runs, Studies, Preview), switched in one place
rather than pushed as screens: see screens/main.py for why."""
