"""Evaluation: STS correlations and mteb runs that follow the official Qwen3 protocol, offline or on the Hub.

Modules: ``sts`` (STS data and correlations), ``instructions`` (which prompt each model/task gets),
``local_tasks`` (mteb tasks from local files), ``mteb_runner`` (mteb runs), ``summary`` (the summary JSON
the model card reads), ``measure`` (texts encoded and time), ``cli`` (``st-qwen3emb eval``).
Nothing heavy is imported here.
"""
