"""`python -m avsdn_tf VERB [FLAGS]`: the console script `avsdn-tf` without its script."""

import sys

from avsdn_tf import console

if __name__ == "__main__":
    sys.exit(console.main(["python -m avsdn_tf", *sys.argv[1:]]))
