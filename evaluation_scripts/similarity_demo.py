"""The post-merge sanity check: two queries (with the instruction) against two documents, similarity x100.

    python evaluation_scripts/similarity_demo.py --model merged_model

Loads the folder with plain sentence-transformers, as an application would, so a broken export shows here.
Queries go through the model's ``query`` prompt (``Instruct: ...\\nQuery:``), documents are embedded bare.
"""

from __future__ import annotations

import argparse
import sys

QUERIES = ["What is the capital of China?", "Explain gravity"]
DOCUMENTS = [
    "The capital of China is Beijing.",
    "Gravity is a force that attracts two bodies towards each other. It gives weight to physical objects and is "
    "responsible for the movement of planets around the sun.",
]


def similarity_matrix(model_dir: str, device: str | None = None) -> list[list[float]]:
    """The 2x2 query-by-document cosine similarity x100."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_dir, device=device)
    query_embeddings = model.encode_query(QUERIES)
    document_embeddings = model.encode_document(DOCUMENTS)
    return (model.similarity(query_embeddings, document_embeddings) * 100).tolist()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="an exported model folder or Hub id")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    for row in similarity_matrix(args.model, args.device):
        print("[" + ", ".join(f"{value:.2f}" for value in row) + "]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
