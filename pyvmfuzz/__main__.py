import sys

from pyvmfuzz.cli import main

sys.exit(main())
