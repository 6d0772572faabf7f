"""The ``iranker`` command line, as a package that commands import from.

- ``main``: the entry point (``iranker = iranker.cli.main:main``); it only builds the parser
  and dispatches. No module imports it (a test checks), so a command never depends on the
  parser of every other command.
- ``errors``: ``CLIError`` and the one mapping from exceptions to an error line and exit code.
- ``options``: the option groups commands share (model/backend, ranking method, thoughts,
  input limits) and their checks.
- ``building``: the backend and ranker the options describe (through ``iranker.building.build_ranker``).
- ``output``: crash-safe output files (``AtomicJSONL``) and output-path checks.
- ``rank_command``: ``iranker rank``.

The anchor is castorini/rank_llm, whose CLI is a package (``cli/spec.py``,
``cli/error_utils.py``) that commands import from.
"""
