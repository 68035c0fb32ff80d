"""The frozen app's entry point: the same `app.cli.main` that `leancoder` and `python -m app` run.

A script of its own (rather than app/__main__.py) keeps the `app` package an ordinary package
inside the bundle; PyInstaller runs this file as `__main__`.
"""

import sys

from app.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
