import sys

from pyvmfuzz.entry import main

sys.exit(main())
