"""Let ``python -m invclose`` reach the command line."""

from invclose.cli import main

main()
