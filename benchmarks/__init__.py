"""mempill benchmarks: the engine against the disk's limit and against the published wheel.

`python -m benchmarks run [--quick]` measures (each as a ratio within one run, medians
over repeated rounds) durable ingest, engine-only ingest in memory and its SQL floor,
flat cost in store size and line length, batching, concurrency (group commit), the
conformance corpus's replay cost, profiles and memory, for this engine and for the
published `mempill` 0.4.0 wheel (driven in its own virtual environment), then prints a
table and writes
`build/bench/results.json` and `build/bench/report.md`. Targets are reported, never
asserted: speed depends on the machine.
"""
