"""`python -m tests.sandbox [--scale X] [--size hubspot.contacts=25000]`: serve the sandbox until Ctrl-C."""
from . import main

main()
