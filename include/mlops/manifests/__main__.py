import sys

from mlops.manifests.cli import main

sys.exit(main())
