"""mteb evaluation with the official Qwen3 instruction protocol, offline-capable with local tasks.

    python evaluation_scripts/run_mteb.py --model M [--tasks STSBenchmark SICK-R ... | --benchmark NAME]
        [--output_folder DIR] [--local_sts PATH] [--local_retrieval DIR] [--local_reranking DIR]

The logic lives in ``st_qwen3emb.evaluation`` (also ``st-qwen3emb eval mteb``).
"""

import sys

from st_qwen3emb.cli.eval import mteb_main

if __name__ == "__main__":
    sys.exit(mteb_main())
