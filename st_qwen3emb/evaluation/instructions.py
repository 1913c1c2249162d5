"""Which instruction a model gets, per task type, in evaluation.

Built on ``st_qwen3emb.protocol`` (no prompt is spelled here). The rules, from the Qwen3-Embedding
evaluation code:

- Qwen3 models: STS and pair classification get the similarity instruction on *both* sides; retrieval and
  reranking queries get the task's instruction (mteb's task prompt, else the upstream fallback), documents
  none. A local task (not in mteb's registry) uses the model's own ``query`` prompt, which holds the
  instruction the model was fine-tuned with.
- Other models: we add no instruction. In mteb runs they keep the ``query``/``document`` prompts saved with
  them, which is how mteb evaluates them too.
- ``instruction=`` overrides the instruction for every task of the run; ``no_instruction=True`` removes all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from st_qwen3emb import protocol

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


@dataclass(frozen=True)
class PromptChoice:
    """An instruction and the exact prefix sentence-transformers concatenates before the text."""

    instruction: str | None
    prompt: str | None


NO_PROMPT = PromptChoice(None, None)


def _is_qwen3(model: SentenceTransformer) -> bool:
    from st_qwen3emb.model import is_qwen3_model

    return is_qwen3_model(model)


def as_prompt(model: SentenceTransformer, instruction: str | None) -> PromptChoice:
    """The prefix for ``instruction``: Qwen3's ``Instruct: ...\\nQuery:`` format, or the text as given."""
    if not instruction:
        return NO_PROMPT
    prompt = protocol.query_prompt(instruction) if _is_qwen3(model) else instruction
    return PromptChoice(instruction, prompt)


def sts_prompt(
    model: SentenceTransformer, *, instruction: str | None = None, no_instruction: bool = False
) -> PromptChoice:
    """The prompt both sentences of an STS pair get."""
    if no_instruction:
        return NO_PROMPT
    if instruction:
        return as_prompt(model, instruction)
    if _is_qwen3(model):
        return as_prompt(model, protocol.SIMILARITY_INSTRUCTION)
    return NO_PROMPT


def _task_query_instruction(metadata: Any) -> str:
    """The query instruction upstream uses for a registered task: mteb's task prompt, else the fallback."""
    prompt = getattr(metadata, "prompt", None)
    if isinstance(prompt, dict):
        prompt = prompt.get("query")
    return prompt or protocol.FALLBACK_RETRIEVAL_INSTRUCTION


@dataclass
class PromptTable:
    """mteb's ``model_prompts`` (names: task, task type, ``{name}-query``...) and the instruction behind each."""

    prompts: dict[str, str] = field(default_factory=dict)
    instructions: dict[str, str | None] = field(default_factory=dict)

    def set(self, name: str, choice: PromptChoice) -> None:
        self.prompts[name] = choice.prompt or ""
        self.instructions[name] = choice.instruction

    def lookup(self, metadata: Any, prompt_type: Any) -> PromptChoice:
        """What mteb will apply for ``metadata``/``prompt_type``, resolved by mteb's own rule."""
        from mteb.models.abs_encoder import get_prompt_name

        name = get_prompt_name(self.prompts, metadata, prompt_type)
        if not name or not self.prompts.get(name):
            return NO_PROMPT
        return PromptChoice(self.instructions.get(name), self.prompts[name])


def mteb_prompt_table(
    model: SentenceTransformer,
    tasks: list[Any],
    *,
    instruction: str | None = None,
    no_instruction: bool = False,
    local_task_names: frozenset[str] = frozenset(),
) -> PromptTable:
    """The prompt table for an mteb run of ``tasks`` (mteb picks by task name, then task type, then side)."""
    table = PromptTable()
    table.set("query", NO_PROMPT)
    table.set("document", NO_PROMPT)
    if no_instruction:
        return table
    qwen = _is_qwen3(model)
    if not qwen:
        own = {k: v for k, v in (model.prompts or {}).items() if k in ("query", "document") and v}
        for name, prompt in own.items():
            table.set(name, PromptChoice(prompt, prompt))
        if instruction:
            for name in (*protocol.SYMMETRIC_TASK_TYPES, "query"):
                table.set(name, as_prompt(model, instruction))
        return table

    similarity = sts_prompt(model, instruction=instruction)
    for task_type in protocol.SYMMETRIC_TASK_TYPES:
        table.set(task_type, similarity)
    if instruction:
        table.set("query", as_prompt(model, instruction))
        return table
    own_query = (model.prompts or {}).get("query")
    if own_query:
        # The instruction inside the saved prompt is the text between the template's two fixed parts.
        head, _, tail = protocol.QUERY_PROMPT_TEMPLATE.partition("{task}")
        own_instruction = own_query[len(head) : len(own_query) - len(tail)] if own_query.startswith(head) else own_query
        table.set("query", PromptChoice(own_instruction, own_query))
    else:
        table.set("query", as_prompt(model, protocol.DEFAULT_RETRIEVAL_INSTRUCTION))
    for task in tasks:
        metadata = task.metadata
        if metadata.name in local_task_names:
            continue  # mteb accepts prompt names only for registered tasks; the type-level ones apply
        if metadata.type in protocol.ASYMMETRIC_TASK_TYPES:
            table.set(f"{metadata.name}-query", as_prompt(model, _task_query_instruction(metadata)))
            table.set(f"{metadata.name}-document", NO_PROMPT)
        elif metadata.type not in protocol.SYMMETRIC_TASK_TYPES and metadata.prompt:
            prompt = metadata.prompt.get("query") if isinstance(metadata.prompt, dict) else metadata.prompt
            if prompt:
                table.set(metadata.name, as_prompt(model, prompt))
    return table
