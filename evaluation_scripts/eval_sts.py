"""STS evaluation of one or more models: printed table, summary JSON and bar chart.

    python evaluation_scripts/eval_sts.py --model M [M2 ...] [--dataset stsb|PATH ...] [--split test]
        [--instruction TEXT | --no_instruction] [--output results.json]

The logic lives in ``st_qwen3emb.evaluation`` (also ``st-qwen3emb eval sts``).
"""

import sys

from st_qwen3emb.cli.eval import sts_main

if __name__ == "__main__":
    sys.exit(sts_main())
