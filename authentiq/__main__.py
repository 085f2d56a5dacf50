import sys

from authentiq.cli import main

sys.exit(main())
