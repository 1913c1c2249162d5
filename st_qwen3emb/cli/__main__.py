"""``python -m st_qwen3emb.cli sft ...`` (what ``torchrun -m`` and ``accelerate launch -m`` run)."""

import sys

from st_qwen3emb.cli import main

sys.exit(main())
