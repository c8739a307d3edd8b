"""The published 0.4.0 wheel's own test suite, run unchanged against `mempill.compat`.

`sdist` fetches the pinned sdist and extracts its binding's tests, `shim` writes the
stand-in `mempill` package that points them at compat, `runner` runs them and holds every
failure to the list of deliberate differences in docs/compat.md (`expected`). Used by
`nox -s compat-peer`, `python -m tools.compat_peer` and tests/test_compat_peer.py.
"""
