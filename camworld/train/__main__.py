"""``python -m camworld.train`` and ``torchrun -m camworld.train``."""

import sys

from camworld.train.cli import main

sys.exit(main())
