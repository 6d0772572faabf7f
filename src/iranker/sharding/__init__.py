"""Sharding ``iranker rank`` and ``iranker eval`` over Ray workers (``--ray [ADDRESS]``).

* :mod:`.cluster` — connect to a Ray cluster or start a local one (``ray.init``), with
  one-line errors for bad or unreachable addresses;
* :mod:`.workers` — the worker actor (the backend loaded once per worker) and the pool that
  hands chunks of examples to the workers and gives the results back *in order*, retrying a
  chunk whose worker died;
* :mod:`.command` — the ``--ray`` / ``--ray-workers`` options and the rankers the two
  commands build from them.

Each worker ranks with the same ``IterativeRanker`` / ``DirectRanker`` the single-process
path builds (``iranker.cli.building.ranker_from_args``); the driver keeps writing the output file
through the same resumable writers. Nothing here is imported by ``import iranker``, and
``ray`` itself is imported only when ``--ray`` is used (extra ``iranker[ray]``).
"""
