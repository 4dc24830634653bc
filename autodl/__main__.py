import sys

from autodl.cli.main import main

sys.exit(main())
