"""`make bench`: run every bench in this package and write its section of docs/benchmarks.md.

A bench is a module of `bench/` with a `main(argv)`. Names given first select benches
(`python -m bench.run ingest trips`); the other arguments are passed to each one, and
`--write` is added unless `--quick` or `--write` is given (`python -m bench.run --quick`
smoke-runs them all without writing).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path

NOT_BENCHES = {"common", "run"}


def benches() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)])
                  if m.name not in NOT_BENCHES and not m.name.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    available = benches()
    chosen = []
    while argv and argv[0] in available:
        chosen.append(argv.pop(0))
    if argv and not argv[0].startswith("-"):
        print(f"unknown bench {argv[0]!r}; there are: {', '.join(available)}", file=sys.stderr)
        return 2
    if "--quick" not in argv and "--write" not in argv:
        argv.append("--write")
    failed = []
    for name in chosen or available:
        module = importlib.import_module(f"bench.{name}")
        if not hasattr(module, "main"):
            continue
        print(f"== bench.{name} {' '.join(argv)}", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            code = module.main(list(argv))
        except SystemExit as exc:  # argparse refusing an argument, or a bench giving up
            code = exc.code if isinstance(exc.code, int) else 1
        except Exception as exc:  # one broken bench must not hide the others' results
            print(f"bench.{name} failed: {exc!r}", file=sys.stderr)
            code = 1
        print(f"== bench.{name} done in {time.monotonic() - started:.0f} s"
              + (f", exit code {code}" if code else ""), file=sys.stderr, flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
