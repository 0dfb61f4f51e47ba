"""``python train.py [flags]`` is ``fnn train [flags]``: the same command, the same flags."""

import sys

from fnn.cli import entry

if __name__ == "__main__":
    sys.exit(entry(sys.argv[1:] or [], command="train", prog="train.py"))
