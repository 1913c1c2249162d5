"""The Qwen3 reranker, beside the embedding path (as sentence-transformers keeps ``cross_encoder/``).

``model`` (``load_reranker``: the CrossEncoder with the upstream template), ``data`` (swift's reranker groups, the
maniscope adapter), ``losses`` (pointwise / listwise), ``train`` (``train_reranker``), ``export`` (merged CrossEncoder,
seq-cls conversion). The embedding path reaches this package only through the task-type tables in
``st_qwen3emb.config``.
"""

from st_qwen3emb.reranker.model import MODEL_TYPE_RERANKER, apply_reranker_protocol, load_reranker, model_instruction

__all__ = ["MODEL_TYPE_RERANKER", "apply_reranker_protocol", "load_reranker", "model_instruction"]
