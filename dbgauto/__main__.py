"""``python -m dbgauto`` runs the command line."""

from dbgauto.cli import main

if __name__ == "__main__":
    main()
