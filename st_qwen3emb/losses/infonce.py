"""``infonce``: contrastive cross-entropy of each anchor against its positive, its hard negatives and (by default)
every other document of the batch on every process.

Columns: ``anchor``, ``positive``, then ``negative_1..negative_k`` (any fixed ``k``, including 0). Label: none. A
``label`` column, if the dataset has one, is ignored: samples are grouped by *columns* (row ``i`` of every column is
sample ``i``), never by labels, so swift's defect where a pair label of 0 corrupts the grouping cannot happen.

Formula (swift's, Qwen3 Embedding report §3.1). With ``s(x, y)`` the cosine (embeddings are L2-normalised here, as
swift assumes), ``T`` the temperature, and for anchor ``q_i`` with positive ``d_i+``:

- ``use_batch=True``: the logits row is ``s(q_i, d)`` for every document ``d`` (positives and hard negatives of all
  samples, gathered from all processes); with ``include_qq`` also ``s(q_i, q_j)`` for every anchor ``j != i``; with
  ``include_dd`` also ``s(d_i+, d)`` for every document except ``d_i+`` itself.
- ``use_batch=False``: the row is ``s(q_i, d_i+), s(q_i, d_i1-), ..., s(q_i, d_ik-)`` only (``include_qq`` and
  ``include_dd`` need other samples, so they are ignored here, as in swift, with a warning).
- ``mask_fake_negative``: every query-document and query-query logit whose cosine exceeds
  ``s(q_i, d_i+) + fake_neg_margin`` is set to ``-inf`` (a likely unlabelled positive). The target itself is never
  masked, so a negative margin cannot make the loss infinite. Document-document logits are not masked, as in swift.
  Unlike swift, the mask also applies when ``use_batch=False`` (swift silently ignores the flag there, yet the own
  hard negatives are exactly where false negatives come from).
- ``loss = mean_i CE(row_i / T, target = d_i+)``.

Options come from keywords or swift's ``INFONCE_*`` variables (``st_qwen3emb.losses.env``), read at each call.
Default temperature 0.1 (swift 4); the seed recipe ran swift <= 3.10, whose default was 0.01.

Several processes (``torch.distributed``): documents (and anchors, for ``include_qq``) are gathered from every process
*with* gradient (swift detaches the other processes' embeddings), each process scores its own anchors against the
gathered documents, and the target of local anchor ``i`` is the global row ``rank * batch + i``. Every process must
have the same per-device batch size (use ``dataloader_drop_last``).

Sources: ms-swift 4.x ``swift/loss/embedding.py``; the Qwen3 Embedding
report (arXiv:2506.05176); the gather-with-gradient pattern of sentence-transformers' MultipleNegativesRankingLoss.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from st_qwen3emb.losses.env import InfoNCEOptions, resolve_infonce_options

logger = logging.getLogger(__name__)

QWEN3_EMBEDDING_CITATION = """
@article{qwen3embedding,
    title={Qwen3 Embedding: Advancing Text Embedding and Reranking Through Foundation Models},
    author={Zhang, Yanzhao and Li, Mingxin and Long, Dingkun and Zhang, Xin and Lin, Huan and Yang, Baosong and Xie, Pengjun and Yang, An and Liu, Dayiheng and Lin, Junyang and Huang, Fei and Zhou, Jingren},
    journal={arXiv preprint arXiv:2506.05176},
    year={2025}
}
"""


def infonce_loss(
    anchors: Tensor,
    documents: Tensor,
    options: InfoNCEOptions = InfoNCEOptions(),  # noqa: B008 - frozen dataclass, safe as a default
    *,
    all_anchors: Tensor | None = None,
    all_documents: Tensor | None = None,
    offset: int = 0,
) -> Tensor:
    """The InfoNCE loss of the local anchors (see the module docstring for the formula).

    Args:
        anchors: ``(batch, dim)`` local anchor embeddings.
        documents: ``(batch, 1 + k, dim)`` local documents; ``[:, 0]`` is each anchor's positive.
        options: the resolved options (``options.hard_negatives`` is not used here: columns are already chosen).
        all_anchors, all_documents: the same tensors from every process, concatenated in rank order (default: the
            local ones); only read when ``options.use_batch``.
        offset: the global row of local sample 0 in ``all_*`` (``rank * batch``).
    """
    if documents.ndim != 3 or documents.shape[0] != anchors.shape[0]:
        raise ValueError(
            f"documents must be (batch, 1 + k, dim) with batch {anchors.shape[0]}, got {tuple(documents.shape)}"
        )
    neg_inf = float("-inf")
    queries = F.normalize(anchors, dim=-1)
    local_docs = F.normalize(documents, dim=-1)
    batch, per_sample, _ = local_docs.shape
    rows = torch.arange(batch, device=anchors.device)

    if not options.use_batch:
        logits = torch.einsum("bd,bnd->bn", queries, local_docs)
        target = torch.zeros(batch, dtype=torch.long, device=anchors.device)
        if options.mask_fake_negative:
            fake = logits > logits[:, :1].detach() + options.fake_neg_margin
            fake[:, 0] = False
            logits = logits.masked_fill(fake, neg_inf)
        return F.cross_entropy(logits / options.temperature, target)

    gathered_docs = local_docs if all_documents is None else F.normalize(all_documents, dim=-1)
    docs_flat = gathered_docs.reshape(-1, gathered_docs.shape[-1])  # sample-major: [d_0+, d_0-.., d_1+, ...]
    target = (offset + rows) * per_sample
    own_positive = torch.zeros(batch, docs_flat.shape[0], dtype=torch.bool, device=anchors.device)
    own_positive[rows, target] = True

    qd = queries @ docs_flat.T
    threshold = qd[rows, target].detach().unsqueeze(1) + options.fake_neg_margin
    if options.mask_fake_negative:
        qd = qd.masked_fill((qd > threshold) & ~own_positive, neg_inf)
    blocks = [qd]
    if options.include_qq:
        gathered_queries = queries if all_anchors is None else F.normalize(all_anchors, dim=-1)
        qq = queries @ gathered_queries.T
        self_mask = torch.zeros_like(qq, dtype=torch.bool)
        self_mask[rows, offset + rows] = True
        if options.mask_fake_negative:
            self_mask |= qq > threshold
        blocks.append(qq.masked_fill(self_mask, neg_inf))
    if options.include_dd:
        dd = local_docs[:, 0] @ docs_flat.T
        blocks.append(dd.masked_fill(own_positive, neg_inf))
    logits = torch.cat(blocks, dim=1) / options.temperature
    return F.cross_entropy(logits, target)


def gather_with_grad(anchors: Tensor, documents: Tensor, include_anchors: bool) -> tuple[Tensor, Tensor, int]:
    """``(all_anchors, all_documents, offset)`` across processes, keeping the autograd graph (identity when not
    distributed). ``all_anchors`` is the local tensor unless ``include_anchors`` (only ``include_qq`` needs them)."""
    from sentence_transformers.util import all_gather_with_grad, get_rank, get_world_size

    if get_world_size() == 1:
        return anchors, documents, 0
    import torch.distributed as dist

    sizes = [torch.zeros(1, dtype=torch.long, device=anchors.device) for _ in range(get_world_size())]
    dist.all_gather(sizes, torch.tensor([anchors.shape[0]], dtype=torch.long, device=anchors.device))
    if len({int(size.item()) for size in sizes}) != 1:
        raise ValueError(
            f"infonce with in-batch negatives across processes needs the same batch size on every process, got "
            f"{[int(size.item()) for size in sizes]}; set dataloader_drop_last=True"
        )
    all_anchors = all_gather_with_grad(anchors) if include_anchors else anchors
    return all_anchors, all_gather_with_grad(documents), get_rank() * anchors.shape[0]


class InfoNCELoss(nn.Module):
    """swift's ``infonce`` loss on a SentenceTransformer (see the module docstring).

    Inputs: (anchor, positive, negative_1, ..., negative_k) columns, no label. Each keyword left as None is read from
    its ``INFONCE_*`` variable at every call, falling back to swift's default.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        temperature: float | None = None,
        use_batch: bool | None = None,
        hard_negatives: int | None = None,
        mask_fake_negative: bool | None = None,
        fake_neg_margin: float | None = None,
        include_qq: bool | None = None,
        include_dd: bool | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        explicit = {
            "temperature": temperature,
            "use_batch": use_batch,
            "hard_negatives": hard_negatives,
            "mask_fake_negative": mask_fake_negative,
            "fake_neg_margin": fake_neg_margin,
            "include_qq": include_qq,
            "include_dd": include_dd,
        }
        self.explicit_options = {name: value for name, value in explicit.items() if value is not None}
        if use_batch is False and (include_qq or include_dd):
            raise ValueError("include_qq / include_dd add other samples' texts as negatives; they need use_batch=True")
        self.options  # noqa: B018 - fail on bad options or variables now, before training starts
        self._warned_ignored = False

    @property
    def options(self) -> InfoNCEOptions:
        """The options in force now: keywords, then ``INFONCE_*`` variables, then defaults."""
        return resolve_infonce_options(**self.explicit_options)

    def select_columns(self, sentence_features: Sequence[Any], options: InfoNCEOptions) -> list[Any]:
        """The anchor, the positive and the first ``hard_negatives`` negative columns (all of them when unset)."""
        columns = list(sentence_features)
        if len(columns) < 2:
            raise ValueError(f"infonce needs at least the anchor and positive columns, got {len(columns)} column(s)")
        k = options.hard_negatives
        if k is None:
            return columns
        if len(columns) - 2 < k:
            raise ValueError(
                f"hard_negatives={k} (INFONCE_HARD_NEGATIVES) but the batch has {len(columns) - 2} negative column(s); "
                f"load the data with st_qwen3emb.load_dataset(..., loss_type='infonce'), which pads each row to k"
            )
        return columns[: 2 + k]

    def loss_from_embeddings(self, embeddings: Sequence[Tensor], options: InfoNCEOptions) -> Tensor:
        """The loss from per-column embeddings ``[anchor, positive, negative_1, ...]``, each ``(batch, dim)``."""
        anchors, documents = embeddings[0], torch.stack(list(embeddings[1:]), dim=1)
        if not options.use_batch:
            if (options.include_qq or options.include_dd) and not self._warned_ignored:
                logger.warning("INFONCE_INCLUDE_QQ/INFONCE_INCLUDE_DD are ignored with INFONCE_USE_BATCH=false")
                self._warned_ignored = True
            return infonce_loss(anchors, documents, options)
        all_anchors, all_documents, offset = gather_with_grad(anchors, documents, options.include_qq)
        return infonce_loss(
            anchors, documents, options, all_anchors=all_anchors, all_documents=all_documents, offset=offset
        )

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        from st_qwen3emb.losses._forward import embed_columns

        options = self.options
        columns = self.select_columns(list(sentence_features), options)
        return self.loss_from_embeddings(embed_columns(self.model, columns), options)

    def get_config_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {**asdict(self.options), "explicit": sorted(self.explicit_options)}

    @property
    def temperature(self) -> float:
        return self.options.temperature

    @property
    def citation(self) -> str:
        return QWEN3_EMBEDDING_CITATION
