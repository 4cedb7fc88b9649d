"""`semspace demo`: an offline tour on the bundled model and the vendored STS-B sample."""

from __future__ import annotations

from semspace.cli.options import echo


def demo() -> None:
    """Offline tour on the bundled model and the vendored STS-B sample: raw vs whitened vs tuned, and lookups."""
    from semspace.evaluate.demo import run_demo

    echo(run_demo())
