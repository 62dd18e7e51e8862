import sys

from mlops.training.cli import main

sys.exit(main())
