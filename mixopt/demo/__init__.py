"""The offline demo: text sources, evaluation tasks, a tokenizer and a tiny base model, built locally.

``mixopt demo data`` builds the sources and tasks (``data.ensure_data``); ``mixopt demo base`` trains the
byte-level BPE tokenizer and the base checkpoint (``base.ensure_base``). Both are cached under
``mixopt.cache.cache_dir()`` (``$MIXOPT_CACHE``, default ``~/.cache/mixopt``) with sha256 checksums in a
manifest, and both are built on first use by the microanneal runner (through ``assets.DemoAssets``, the
runner's default assets), so ``mixopt study run`` works on a fresh machine.
"""
