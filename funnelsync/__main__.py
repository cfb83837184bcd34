"""`python -m funnelsync ...` behaves like `funnelsync ...`."""
from funnelsync.cli import main

main()
