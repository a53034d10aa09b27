"""``python -m zcnas``: the ``zcnas`` command."""

from zcnas.cli import main

if __name__ == "__main__":
    main()
