"""The conformance lab: replay identical claim streams on every backend and prove they agree.

* `replay` — run streams on backends, compare the runs and the recorded expectations.
* `coverage` — which reference rules the replays exercised (derived from what they observed).
* `machine` — the hypothesis state machine that drives every backend with the same steps.
* `report` — HTML and JSON summaries under build/conformance/.

Run it with `python -m conformance --help`.
"""
