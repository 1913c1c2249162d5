"""infonce and cached_infonce: the math against a loop reference written from swift-reference.md, the INFONCE_*
variables against keywords, grouping independent of labels, distributed targets and gradients, GradCache equality."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from _loss_helpers import DIM, EmbeddingTable, clear_infonce_env

from st_qwen3emb.losses import build_loss
from st_qwen3emb.losses.env import InfoNCEOptions, resolve_infonce_options
from st_qwen3emb.losses.infonce import infonce_loss


@pytest.fixture(autouse=True)
def _clean_infonce_env(monkeypatch):
    clear_infonce_env(monkeypatch)


def reference_infonce(anchors, docs, temperature, use_batch, mask, margin, qq, dd):
    """Per anchor, list the logits the reference describes, then CE with the own positive; plain Python floats."""
    norm = lambda x: [v / math.sqrt(sum(t * t for t in x)) for v in x]  # noqa: E731
    dot = lambda x, y: sum(p * q for p, q in zip(x, y, strict=True))  # noqa: E731
    a = [norm(row) for row in anchors.tolist()]
    d = [[norm(col) for col in sample] for sample in docs.tolist()]
    total = 0.0
    for i in range(len(a)):
        positive = dot(a[i], d[i][0])
        negatives = []  # candidates other than the target; masked ones are left out (= -inf)
        if not use_batch:
            for j in range(1, len(d[i])):
                score = dot(a[i], d[i][j])
                if not (mask and score > positive + margin):
                    negatives.append(score)
        else:
            for s, sample in enumerate(d):
                for j, doc in enumerate(sample):
                    if s == i and j == 0:
                        continue
                    score = dot(a[i], doc)
                    if not (mask and score > positive + margin):
                        negatives.append(score)
            if qq:
                for s in range(len(a)):
                    if s != i:
                        score = dot(a[i], a[s])
                        if not (mask and score > positive + margin):
                            negatives.append(score)
            if dd:
                for s, sample in enumerate(d):
                    for j, doc in enumerate(sample):
                        if not (s == i and j == 0):
                            negatives.append(dot(d[i][0], doc))
        denominator = math.exp(positive / temperature) + sum(math.exp(n / temperature) for n in negatives)
        total += -(positive / temperature) + math.log(denominator)
    return total / len(a)


def make_batch(batch=4, k=2, seed=0, scale=True):
    """Anchors and documents where some negatives sit very close to their anchor, so fake-negative masking bites."""
    g = torch.Generator().manual_seed(seed)
    anchors = torch.randn(batch, DIM, generator=g, dtype=torch.float64)
    docs = torch.randn(batch, 1 + k, DIM, generator=g, dtype=torch.float64)
    docs[:, 0] = anchors + 0.8 * docs[:, 0]
    if k:
        docs[0, 1] = anchors[0] + 0.05 * docs[0, 1]  # a likely false negative
    if scale:  # not normalised: the loss must normalise itself
        anchors = anchors * torch.linspace(0.5, 3.0, batch, dtype=torch.float64)[:, None]
    return anchors, docs


OPTION_GRID = list(
    itertools.product(
        [0.1, 0.02],  # temperature
        [True, False],  # use_batch
        [0, 1, 2],  # hard negatives k
        [(False, 0.1), (True, 0.1), (True, -0.05)],  # mask fake negatives, margin
        [False, True],  # include_qq
        [False, True],  # include_dd
    )
)


@pytest.mark.parametrize(("temperature", "use_batch", "k", "mask", "qq", "dd"), OPTION_GRID)
def test_infonce_matches_reference_for_every_option(temperature, use_batch, k, mask, qq, dd):
    anchors, docs = make_batch(k=k)
    options = InfoNCEOptions(
        temperature=temperature,
        use_batch=use_batch,
        mask_fake_negative=mask[0],
        fake_neg_margin=mask[1],
        include_qq=qq,
        include_dd=dd,
    )
    got = infonce_loss(anchors, docs, options).item()
    # Without in-batch negatives, qq and dd have nothing to add (swift ignores them there too).
    want = reference_infonce(
        anchors, docs, temperature, use_batch, mask[0], mask[1], qq and use_batch, dd and use_batch
    )
    assert got == pytest.approx(want, abs=1e-6, rel=1e-6)


def test_fake_negative_mask_changes_the_loss_and_never_masks_the_positive():
    anchors, docs = make_batch(k=2)
    plain = infonce_loss(anchors, docs, InfoNCEOptions(use_batch=False)).item()
    masked = infonce_loss(anchors, docs, InfoNCEOptions(use_batch=False, mask_fake_negative=True)).item()
    assert masked < plain  # the near-duplicate negative of sample 0 was removed
    # A margin so negative that every candidate is above the threshold: only the target survives, loss 0, not inf.
    everything = InfoNCEOptions(mask_fake_negative=True, fake_neg_margin=-10.0, include_qq=True)
    assert infonce_loss(anchors, docs, everything).item() == pytest.approx(0.0, abs=1e-12)


def test_default_temperature_is_swift4_and_seed_value_is_documented():
    from st_qwen3emb.losses import env

    assert InfoNCEOptions().temperature == 0.1
    assert env.SEED_TEMPERATURE == 0.01


def columns_of(anchors, docs):
    return [{"emb": anchors}] + [{"emb": docs[:, j]} for j in range(docs.shape[1])]


ENV_CASES = [
    # (environment, keywords, expected resolved options)
    ({}, {}, InfoNCEOptions()),
    (
        {
            "INFONCE_TEMPERATURE": "0.01",
            "INFONCE_USE_BATCH": "false",
            "INFONCE_HARD_NEGATIVES": "1",
            "INFONCE_MASK_FAKE_NEGATIVE": "True",
            "INFONCE_FAKE_NEG_MARGIN": "0.2",
            "INFONCE_INCLUDE_QQ": "1",
            "INFONCE_INCLUDE_DD": "yes",
        },
        {},
        InfoNCEOptions(0.01, False, 1, True, 0.2, True, True),
    ),
    (
        {"INFONCE_TEMPERATURE": "0.01", "INFONCE_USE_BATCH": "False", "INFONCE_INCLUDE_QQ": "true"},
        {"temperature": 0.05, "use_batch": True, "include_qq": False},
        InfoNCEOptions(temperature=0.05, use_batch=True, include_qq=False),
    ),
    (
        {"INFONCE_MASK_FAKE_NEGATIVE": "true", "INFONCE_FAKE_NEG_MARGIN": "0.3", "INFONCE_INCLUDE_DD": "true"},
        {"fake_neg_margin": 0.05, "hard_negatives": 2},
        InfoNCEOptions(hard_negatives=2, mask_fake_negative=True, fake_neg_margin=0.05, include_dd=True),
    ),
]


@pytest.mark.parametrize(("environ", "keywords", "expected"), ENV_CASES)
def test_env_variables_and_keywords_resolve_with_keywords_winning(monkeypatch, environ, keywords, expected):
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert resolve_infonce_options(**keywords) == expected
    # and the loss module computes exactly the math of those options, reading the variables at the call
    loss = build_loss("infonce", EmbeddingTable(), **keywords)
    anchors, docs = make_batch(k=2)
    model_scale = loss.model.scale.detach()
    k = expected.hard_negatives if expected.hard_negatives is not None else 2
    want = reference_infonce(
        anchors * model_scale,
        docs[:, : 1 + k] * model_scale,
        expected.temperature,
        expected.use_batch,
        expected.mask_fake_negative,
        expected.fake_neg_margin,
        expected.include_qq and expected.use_batch,
        expected.include_dd and expected.use_batch,
    )
    assert loss(columns_of(anchors, docs), None).item() == pytest.approx(want, abs=1e-6)


def test_env_variables_are_read_at_each_call(monkeypatch):
    loss = build_loss("infonce", EmbeddingTable())
    anchors, docs = make_batch(k=1)
    first = loss(columns_of(anchors, docs), None).item()
    monkeypatch.setenv("INFONCE_TEMPERATURE", "0.5")
    second = loss(columns_of(anchors, docs), None).item()
    assert first != pytest.approx(second)
    assert loss.get_config_dict()["temperature"] == 0.5
    pinned = build_loss("infonce", EmbeddingTable(), temperature=0.1)
    assert pinned(columns_of(anchors, docs), None).item() == pytest.approx(first, abs=1e-12)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("INFONCE_USE_BATCH", "maybe", "INFONCE_USE_BATCH='maybe' is not valid; accepted: true or false"),
        ("INFONCE_TEMPERATURE", "warm", "INFONCE_TEMPERATURE='warm' is not valid; accepted: a number > 0"),
        ("INFONCE_TEMPERATURE", "0", "INFONCE_TEMPERATURE='0' is not valid; accepted: a number > 0"),
        ("INFONCE_HARD_NEGATIVES", "two", "INFONCE_HARD_NEGATIVES='two' is not valid; accepted: an integer >= 0"),
    ],
)
def test_bad_env_values_fail_when_the_loss_is_built(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        build_loss("infonce", EmbeddingTable())


def test_contradictory_keywords_and_unknown_options_are_errors():
    with pytest.raises(ValueError, match="need use_batch=True"):
        build_loss("infonce", EmbeddingTable(), use_batch=False, include_qq=True)
    with pytest.raises(TypeError, match="bad option.*temprature.*temperature"):
        build_loss("infonce", EmbeddingTable(), temprature=0.1)


def test_hard_negatives_keeps_the_first_k_columns_and_rejects_too_few():
    anchors, docs = make_batch(k=2)
    truncated = build_loss("infonce", EmbeddingTable(), hard_negatives=1)(columns_of(anchors, docs), None)
    exact = build_loss("infonce", EmbeddingTable())(columns_of(anchors, docs[:, :2]), None)
    assert truncated.item() == pytest.approx(exact.item(), abs=1e-12)
    with pytest.raises(ValueError, match="hard_negatives=3.*2 negative column"):
        build_loss("infonce", EmbeddingTable(), hard_negatives=3)(columns_of(anchors, docs), None)


def test_labels_never_change_the_grouping():
    """swift finds samples from non-zero labels, so a label of 0 merges two samples; columns group here."""
    anchors, docs = make_batch(k=1)
    loss = build_loss("infonce", EmbeddingTable(), include_dd=True, include_qq=True)
    batch = columns_of(anchors, docs)
    values = {
        loss(batch, labels).item()
        for labels in (None, torch.ones(4), torch.tensor([1.0, 0.0, 1.0, 0.0]), torch.zeros(4))
    }
    assert len(values) == 1


@pytest.mark.parametrize(
    "options", [InfoNCEOptions(), InfoNCEOptions(include_qq=True, include_dd=True, mask_fake_negative=True)]
)
def test_per_process_losses_average_to_the_full_batch_loss(options):
    """Each process scores its own anchors against the gathered batch; the target must sit at rank * batch + i."""
    anchors, docs = make_batch(batch=6, k=2)
    full = infonce_loss(anchors, docs, options)
    per_rank = [
        infonce_loss(
            anchors[r * 3 : (r + 1) * 3],
            docs[r * 3 : (r + 1) * 3],
            options,
            all_anchors=anchors,
            all_documents=docs,
            offset=r * 3,
        )
        for r in range(2)
    ]
    assert torch.stack(per_rank).mean().item() == pytest.approx(full.item(), abs=1e-12)


def _distributed_worker(rank, world_size, init_file, anchors, docs, out_dir):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        rows = slice(rank * 2, (rank + 1) * 2)
        local_anchors = anchors[rows].clone().requires_grad_()
        local_docs = docs[rows].clone().requires_grad_()
        loss = build_loss("infonce", EmbeddingTable(), include_qq=True, include_dd=True)
        model_scale = loss.model.scale.detach()
        value = loss.loss_from_embeddings(
            [local_anchors * model_scale] + [local_docs[:, j] * model_scale for j in range(docs.shape[1])], loss.options
        )
        value.backward()
        torch.save(
            {"loss": value.detach(), "ga": local_anchors.grad, "gd": local_docs.grad}, f"{out_dir}/rank{rank}.pt"
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two fresh processes each import torch and sentence-transformers (fork would deadlock torch)
def test_gather_across_processes_keeps_the_gradient(tmp_path):
    """Two gloo processes: each rank's loss averages to the full-batch loss and, after the all_gather backward, each
    rank's embeddings get world_size x the full-batch gradient (DDP then divides by world_size) — nonzero
    contributions from the other rank's anchors, which swift detaches."""
    import torch.multiprocessing as mp

    anchors, docs = make_batch(batch=4, k=1)
    mp.start_processes(
        _distributed_worker,
        args=(2, str(tmp_path / "init"), anchors, docs, str(tmp_path)),
        nprocs=2,
        join=True,
        start_method="spawn",
    )
    results = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]

    model = EmbeddingTable()
    full_anchors, full_docs = anchors.clone().requires_grad_(), docs.clone().requires_grad_()
    full = build_loss("infonce", model, include_qq=True, include_dd=True).loss_from_embeddings(
        [full_anchors * model.scale.detach()] + [full_docs[:, j] * model.scale.detach() for j in range(2)],
        resolve_infonce_options(include_qq=True, include_dd=True),
    )
    full.backward()
    assert torch.stack([r["loss"] for r in results]).mean().item() == pytest.approx(full.item(), abs=1e-10)
    for rank, result in enumerate(results):
        rows = slice(rank * 2, (rank + 1) * 2)
        torch.testing.assert_close(result["ga"], 2 * full_anchors.grad[rows], atol=1e-10, rtol=1e-8)
        torch.testing.assert_close(result["gd"], 2 * full_docs.grad[rows], atol=1e-10, rtol=1e-8)


# --- cached_infonce on the tiny Qwen3 model ---------------------------------------------------------------------
TEXTS = {
    "anchor": ["what is the capital of france", "how tall is mount everest", "who wrote hamlet", "boiling point"],
    "positive": ["Paris is the capital of France.", "Everest is 8849 m high.", "Shakespeare wrote Hamlet.", "100 C"],
    "negative_1": ["Berlin is in Germany.", "The Alps are in Europe.", "Goethe wrote Faust.", "Ice melts at 0 C."],
    "negative_2": ["Rome is old.", "K2 is the second highest.", "Marlowe was a poet.", "Water is wet."],
}


@pytest.fixture(scope="module")
def tiny_model(tiny_qwen_st):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(tiny_qwen_st), device="cpu")


def _features(model):
    return [model.tokenize(texts) for texts in TEXTS.values()]


def _loss_and_grads(model, loss):
    model.zero_grad()
    value = loss(_features(model), None)
    value.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    return value.item(), grads


@pytest.mark.parametrize(
    ("options", "mini_batch_size"),
    [({}, 3), ({"include_qq": True, "include_dd": True, "mask_fake_negative": True}, 1), ({"use_batch": False}, 2)],
)
def test_cached_infonce_equals_infonce_in_loss_and_gradients(tiny_model, options, mini_batch_size):
    want_loss, want_grads = _loss_and_grads(tiny_model, build_loss("infonce", tiny_model, **options))
    cached = build_loss("cached_infonce", tiny_model, mini_batch_size=mini_batch_size, **options)
    got_loss, got_grads = _loss_and_grads(tiny_model, cached)
    assert got_loss == pytest.approx(want_loss, abs=1e-6)
    assert want_grads and set(got_grads) == set(want_grads)
    assert any(g.abs().sum() > 0 for g in want_grads.values())
    for name, grad in want_grads.items():
        torch.testing.assert_close(got_grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)


def test_cached_infonce_with_matryoshka_equals_uncached(tiny_model):
    dims = '{"16": 1, "64": 0.5}'
    want_loss, want_grads = _loss_and_grads(tiny_model, build_loss("infonce", tiny_model, mrl_dims=dims))
    got_loss, got_grads = _loss_and_grads(
        tiny_model, build_loss("cached_infonce", tiny_model, mini_batch_size=2, mrl_dims=dims)
    )
    assert got_loss == pytest.approx(want_loss, abs=1e-6)
    for name, grad in want_grads.items():
        torch.testing.assert_close(got_grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)


def test_cached_infonce_rejects_a_bad_mini_batch_size(tiny_model):
    with pytest.raises(ValueError, match="mini_batch_size"):
        build_loss("cached_infonce", tiny_model, mini_batch_size=0)


@pytest.mark.parametrize(("loss_type", "options"), [("infonce", {}), ("cached_infonce", {"mini_batch_size": 2})])
def test_sentence_transformer_trainer_takes_the_loss(tiny_model, tmp_path, loss_type, options):
    """One optimiser step through SentenceTransformerTrainer, with mrl_dims, changes the weights."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    model = tiny_model
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        max_steps=1,
        learning_rate=1e-3,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
    )
    loss = build_loss(loss_type, model, mrl_dims={"32": 1, "64": 1}, **options)
    data = Dataset.from_dict({name: TEXTS[name] for name in ("anchor", "positive", "negative_1")})
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=loss)
    result = trainer.train()
    assert math.isfinite(result.training_loss) and result.training_loss > 0
    assert any(not torch.equal(before[name], p.detach()) for name, p in model.named_parameters())
    with torch.no_grad():  # leave the shared module fixture as it was
        for name, p in model.named_parameters():
            p.copy_(before[name])
