"""`python -m mempill.lab <command>`: run (the lab), crash and crash-states (durability),
contention."""

from __future__ import annotations

import importlib
import sys

from mempill import extras

COMMANDS = {
    "run": ("mempill.lab.run", "the conformance lab on the embedded default, with its summary"),
    "crash": ("mempill.lab.durability.crash", "crash and power-loss durability experiments"),
    "crash-states": (
        "mempill.lab.durability.states",
        "every crash state a persistence model allows, recovered and checked",
    ),
    "contention": ("mempill.lab.contention", "lock-contention experiments"),
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        print(f"usage: python -m mempill.lab {{{','.join(COMMANDS)}}} [options]\n")
        for name, (_, about) in COMMANDS.items():
            print(f"  {name:<13} {about}")
        return 0 if args and args[0] in ("-h", "--help") else 2
    try:
        module = importlib.import_module(COMMANDS[args[0]][0])
        result: int = module.main(args[1:])
    except ModuleNotFoundError as e:
        if not extras.third_party(e):
            raise
        print(
            f"error: {extras.missing(f'python -m mempill.lab {args[0]}', 'lab')}", file=sys.stderr
        )
        return 2
    return result


if __name__ == "__main__":
    raise SystemExit(main())
