import sys

from srg.cli import main

sys.exit(main())
