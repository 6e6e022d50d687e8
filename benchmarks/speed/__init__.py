"""The sections of ``benchmarks/bench_speed.py``, one module each.

Each section module has ``run(quick, device) -> dict`` (the measured keys, saved to the JSON)
and ``render(result) -> list[str]`` (its markdown table, read from those same keys):
``train``, ``quality``, ``serve``, ``knn`` and ``cache``; :mod:`speed.report` puts them
together. ``common`` holds the timing helpers and the data, ``published`` the re-implemented
published training step that ``train`` and ``quality`` compare against.
"""
