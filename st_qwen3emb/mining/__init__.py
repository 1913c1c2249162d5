"""Hard-negative mining for retrieval fine-tuning: pairs + a corpus -> a training file with ``k`` mined negatives.

- ``hard_negatives``: ``mine``, sentence-transformers' ``mine_hard_negatives`` with the Qwen3 prompts, every known
  positive excluded, a reranker filter and a summary;
- ``streaming``: corpora larger than one chunk, in bounded memory and resumable; ``write_mined``, the one path
  from pairs to a file;
- ``corpus``: the corpus files, read as streams; ``output``: the row layouts and the atomic writer.
"""

from .corpus import CorpusFile, corpus_file, default_corpus
from .hard_negatives import DEFAULT_NUM_NEGATIVES, MiningSummary, mine, query_positives
from .output import OUTPUT_FORMATS, OutputFormat, format_row, write_jsonl
from .streaming import DEFAULT_CHUNK_SIZE, mine_corpus, state_folder, write_mined

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_NUM_NEGATIVES",
    "OUTPUT_FORMATS",
    "CorpusFile",
    "MiningSummary",
    "OutputFormat",
    "corpus_file",
    "default_corpus",
    "format_row",
    "mine",
    "mine_corpus",
    "query_positives",
    "state_folder",
    "write_jsonl",
    "write_mined",
]
