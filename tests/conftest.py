"""Set-up every test shares. ``pythonpath = ["tests"]`` (pyproject.toml) lets tests import the helpers
that live next to them (``helpers``, ``cases``, ``fuzzing`` ...)."""
import os

# Keras 3 runs on the torch backend in every test; set before any test module imports keras.
os.environ.setdefault("KERAS_BACKEND", "torch")
