import sys

from xwing.cli import main

sys.exit(main())
