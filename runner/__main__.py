"""`python -m runner`: the same as the `bria-run` command."""

from runner.cli import main

# Guarded: worker processes started with "spawn" (the gallery's thumbnails) import this
# module again, and must not run the command line a second time.
if __name__ == "__main__":
    main()
