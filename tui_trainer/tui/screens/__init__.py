"""Screens of the console: the main screen holding the views, and the run detail, compare,
misclassified-images and confirm screens pushed over it."""
