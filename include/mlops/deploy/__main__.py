import sys

from mlops.deploy.cli import main

sys.exit(main())
