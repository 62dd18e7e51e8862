"""A model loader process that reads requests and never answers (``LoaderProcess(worker=)``)."""

import sys
import time

if __name__ == "__main__":
    sys.stdin.buffer.read(1)
    time.sleep(3600)
