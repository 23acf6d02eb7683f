"""``quorum doctor``'s checks: what to look at first when something is off.

`checks.diagnose` returns one `Finding` a line, ``ok``, ``warn`` or ``FAIL``, each non-ok one with
what to do about it: the installation, the config in use and whether it loads, the themes, the
data directory's permissions, the models (`models`: keys, endpoints, local files) and the
knowledge base with its embedder. The checks report and repair nothing; ``core.cli.doctor``
prints them. Heavy libraries (chromadb, onnxruntime, llama_cpp) are imported only by the check
that needs one.
"""
