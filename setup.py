"""Build hook: compile the matching engine to C extensions with mypyc.

The engine is plain, fully typed Python; mypyc turns it into native classes, about twice as
fast. ``DATAEX_PURE_PYTHON=1`` skips the compilation and installs the same modules as Python.
``matching/state.py`` stays interpreted: it only lists the classes a snapshot may hold.
"""

import os
from pathlib import Path

from setuptools import setup

INTERPRETED = {"state.py"}
COMPILED = sorted(
    str(path) for path in Path("matching").glob("*.py") if path.name not in INTERPRETED
)

if os.environ.get("DATAEX_PURE_PYTHON") == "1":
    setup()
else:
    from mypyc.build import mypycify

    setup(ext_modules=mypycify(COMPILED, group_name="matching", opt_level="3"))
