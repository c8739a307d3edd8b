"""The research toolkit around the engine: servers, streams, ledgers as data, experiments.

Submodules import their heavy dependencies (pandas, duckdb, matplotlib) lazily, so the
engine itself never needs them.
"""
