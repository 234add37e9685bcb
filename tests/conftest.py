"""Suite-wide test settings."""

import os

from hypothesis import settings

# Continuous integration explores the same examples on every run, so a landing never depends
# on the luck of the draw; local runs keep drawing new ones (and remember what failed).
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")
