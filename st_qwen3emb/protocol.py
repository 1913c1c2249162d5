"""The Qwen3-Embedding and Qwen3-Reranker input protocol, in one place.

Every fact about how Qwen3 models expect their input lives here: special tokens, padding side, the
instruction prompt format, the task-type instruction table and the reranker chat template. Other
modules import these names; none of them spells a prompt or a token id itself.

Source: the Qwen3-Embedding / Qwen3-Reranker model cards (``Qwen/Qwen3-Embedding-0.6B``, ``Qwen/Qwen3-Reranker-0.6B``
on the Hub) and the evaluation code of the ``QwenLM/Qwen3-Embedding`` repository.
"""

from __future__ import annotations

# --- tokens -------------------------------------------------------------------------------------
EOS_TOKEN = "<|endoftext|>"  # appended to every embedding input; also the pad token
EOS_TOKEN_ID = 151643
CHAT_EOS_TOKEN = "<|im_end|>"  # the chat end-of-turn token: *not* what embeddings pool on
PADDING_SIDE = "left"

# A sane training length. The upstream config allows 32k positions, which runs out of memory the
# moment a long row appears in training; users who need more pass max_seq_length explicitly.
DEFAULT_MAX_SEQ_LENGTH = 512

# --- embedding prompts --------------------------------------------------------------------------
QUERY_PROMPT_TEMPLATE = "Instruct: {task}\nQuery:"  # no space after "Query:", by design upstream

DEFAULT_RETRIEVAL_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
FALLBACK_RETRIEVAL_INSTRUCTION = "Retrieval relevant passage for the given query."
SIMILARITY_INSTRUCTION = "Retrieve semantically similar text"

# Task types whose both sides get the similarity instruction (upstream evaluation code).
SYMMETRIC_TASK_TYPES = ("STS", "PairClassification")
# Task types where only the query side gets an instruction; documents stay bare.
ASYMMETRIC_TASK_TYPES = ("Retrieval", "Reranking", "InstructionRetrieval")


def query_prompt(task: str) -> str:
    """The prefix sentence-transformers concatenates before a query: ``Instruct: {task}\\nQuery:``."""
    if not task or not task.strip():
        raise ValueError("an instruction must be a non-empty string")
    return QUERY_PROMPT_TEMPLATE.format(task=task)


def format_query(text: str, task: str) -> str:
    """The full query text the model sees (the official ``get_detailed_instruct``)."""
    return query_prompt(task) + text


def default_prompts(query_instruction: str | None = None) -> dict[str, str]:
    """The ``prompts`` table stored with a Qwen3 embedding model (``query_instruction=""``: bare queries).

    ``query``/``document`` are what ``encode_query``/``encode_document`` use. The task-type names
    (``STS``, ``PairClassification``) are looked up by mteb, which gives STS inputs no query/document
    prompt type; without them mteb would evaluate STS with no instruction, unlike upstream.
    """
    if query_instruction is None:
        query = query_prompt(DEFAULT_RETRIEVAL_INSTRUCTION)
    else:  # an empty instruction means bare queries (what ms-swift trains on)
        query = query_prompt(query_instruction) if query_instruction.strip() else ""
    prompts = {"query": query, "document": ""}
    for task_type in SYMMETRIC_TASK_TYPES:
        prompts[task_type] = query_prompt(SIMILARITY_INSTRUCTION)
    return prompts


# --- reranker -----------------------------------------------------------------------------------
RERANKER_SYSTEM_PROMPT = (
    'Judge whether the Document meets the requirements based on the Query and the Instruct provided. '
    'Note that the answer can only be "yes" or "no".'
)
RERANKER_DEFAULT_INSTRUCTION = DEFAULT_RETRIEVAL_INSTRUCTION
RERANKER_PREFIX = "<|im_start|>system\n" + RERANKER_SYSTEM_PROMPT + "<|im_end|>\n<|im_start|>user\n"
RERANKER_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
RERANKER_USER_TEMPLATE = "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}"
RERANKER_YES_TOKEN = "yes"
RERANKER_NO_TOKEN = "no"
RERANKER_MAX_LENGTH = 8192  # the official recipe's max_length (template tokens included)


def format_reranker_pair(query: str, document: str, instruction: str | None = None) -> str:
    """The whole reranker input for one (query, document) pair, template included."""
    user = RERANKER_USER_TEMPLATE.format(
        instruction=instruction or RERANKER_DEFAULT_INSTRUCTION, query=query, document=document
    )
    return RERANKER_PREFIX + user + RERANKER_SUFFIX


def reranker_chat_template() -> str:
    """A Jinja chat template that renders a sentence-transformers ``query``/``document`` pair exactly as
    :func:`format_reranker_pair` does, so the template is saved with the model (``chat_template.jinja``).

    sentence-transformers 6 turns a CrossEncoder pair into the messages ``[{"role": "query", ...},
    {"role": "document", ...}]`` and a ``prompt`` into a leading ``system`` message. The instruction is, in
    order: that ``system`` message (per call / per dataset), the ``instruction`` template variable (a
    model-wide default stored in the Transformer module's ``processing_kwargs``), then the default.
    Content may be a string or a list of text parts (both message formats of sentence-transformers).
    """
    literals = (RERANKER_PREFIX, RERANKER_SUFFIX, RERANKER_DEFAULT_INSTRUCTION, RERANKER_USER_TEMPLATE)
    if any(marker in text for text in literals for marker in ("{{", "{%", "{#")):
        raise ValueError("a reranker template piece contains Jinja syntax and cannot be used as literal text")
    if RERANKER_DEFAULT_INSTRUCTION != RERANKER_DEFAULT_INSTRUCTION.strip():
        raise ValueError("the default reranker instruction must not start or end with whitespace")
    text_of = "(m.content if m.content is string else m.content | map(attribute='text') | join(''))"
    user = RERANKER_USER_TEMPLATE.format(
        instruction="{{ ns.instruction }}", query="{{ ns.query }}", document="{{ ns.document }}"
    )
    return (
        "{%- set ns = namespace(instruction=(instruction if instruction is defined and instruction else ''), "
        "query='', document='') -%}"
        "{%- for m in messages -%}"
        "{%- if m.role == 'system' -%}{%- set ns.instruction = " + text_of + " -%}"
        "{%- elif m.role == 'query' or m.role == 'user' -%}{%- set ns.query = " + text_of + " -%}"
        "{%- elif m.role == 'document' -%}{%- set ns.document = " + text_of + " -%}"
        "{%- endif -%}"
        "{%- endfor -%}"
        "{%- set default_instruction -%}" + RERANKER_DEFAULT_INSTRUCTION + "{%- endset -%}"
        "{%- if not ns.instruction -%}{%- set ns.instruction = default_instruction -%}{%- endif -%}"
        + RERANKER_PREFIX + user + RERANKER_SUFFIX
        # Jinja drops one trailing newline of the template source; the suffix ends in newlines that matter.
        + "{{ '' }}"
    )
