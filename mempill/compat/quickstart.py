"""The wheel's five-minute quickstart, on `mempill.compat`: `python -m mempill.compat.quickstart`.

A succession (Berlin until 2025, Munich since) recalls Munich; two timeless statements of
different CEOs are Contested, with no value and both candidates.
"""

from __future__ import annotations

from mempill.compat.api import open_in_memory
from mempill.compat.ergonomic import RememberOptions, recall, remember


def main() -> None:
    with open_in_memory() as engine:
        agent = "my-agent"
        remember(engine, agent, "user", "city", "Berlin", RememberOptions("2020", "2025"))
        remember(engine, agent, "user", "city", "Munich", RememberOptions(valid_from="2025"))
        city = recall(engine, agent, "user", "city")
        assert city.as_str() == "Munich", city
        assert not city.is_contested()
        remember(engine, agent, "acme", "ceo", "Alice")
        remember(engine, agent, "acme", "ceo", "Bob")
        ceo = recall(engine, agent, "acme", "ceo")
        assert ceo.is_contested(), ceo
        assert ceo.value is None
        assert sorted(c.value for c in ceo.candidates) == ["Alice", "Bob"]
    print("quickstart passed")


if __name__ == "__main__":
    main()
