"""`python -m fsbench ...` (and `torchrun -m fsbench run ...`) is the `fsbench` command."""
import sys

from fsbench.cli import main

sys.exit(main())
