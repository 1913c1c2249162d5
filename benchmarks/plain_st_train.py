"""The baseline: the same training written with plain sentence-transformers, as a user would by hand.

Reads the benchmark's swift 4.x JSONL (messages, positive_messages, label) and trains with
``SentenceTransformerTrainer`` and sentence-transformers' own loss (CosineSimilarityLoss for
cosine_similarity, MultipleNegativesRankingLoss with scale 1/temperature for infonce).
"""

from __future__ import annotations

import argparse
import json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--loss", choices=["cosine_similarity", "infonce"], default="cosine_similarity")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--gradient_accumulation_steps", type=int, default=2)
    parser.add_argument("--learning_rate", type=float, default=6e-6)
    parser.add_argument("--num_train_epochs", type=float, default=1.0)
    parser.add_argument("--max_seq_length", type=int, default=512)
    parser.add_argument("--temperature", type=float, default=0.1)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--logging_steps", type=int, default=10)
    args = parser.parse_args()

    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
        losses,
    )

    rows = [json.loads(line) for line in open(args.data, encoding="utf-8") if line.strip()]
    anchors = [r["messages"][0]["content"] for r in rows]  # the benchmark writes swift 4.x rows
    positives = [r["positive_messages"][0][0]["content"] for r in rows]
    model = SentenceTransformer(args.model)
    model.max_seq_length = args.max_seq_length
    if args.loss == "cosine_similarity":
        data = Dataset.from_dict({"sentence1": anchors, "sentence2": positives,
                                  "score": [float(r["label"]) for r in rows]})
        loss = losses.CosineSimilarityLoss(model)
    else:
        data = Dataset.from_dict({"anchor": anchors, "positive": positives})
        loss = losses.MultipleNegativesRankingLoss(model, scale=1.0 / args.temperature)
    training_args = SentenceTransformerTrainingArguments(
        output_dir=args.output_dir,
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        learning_rate=args.learning_rate,
        num_train_epochs=args.num_train_epochs,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        logging_steps=args.logging_steps,
        seed=args.seed,
        dataloader_drop_last=True,
        disable_tqdm=True,
    )
    trainer = SentenceTransformerTrainer(model=model, args=training_args, train_dataset=data, loss=loss)
    trainer.train()
    # the logged losses, so the benchmark can compare loss curves with ours
    with open(f"{args.output_dir}/log_history.json", "w", encoding="utf-8") as f:
        json.dump(trainer.state.log_history, f)


if __name__ == "__main__":
    main()
