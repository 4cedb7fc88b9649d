"""Schemathesis with several seeds and many examples, and the API-key probe on every route (issue 29).

For each seed: a server on 127.0.0.1 (free port) over a collection whitened to 2 components with a tiny random
cross-encoder — every operation — and one over a folder of collections — the /collections operations — each fuzzed
by schemathesis in its positive and negative modes with `--examples` per operation and mode (Hypothesis `@seed`, no
shrinking; the machinery, checks and expected statuses of `tests/service/test_fuzz.py`, in `tests/service/fuzzing.py`).
Then a server with an API key: every path+method of its OpenAPI schema (and /openapi.json, /docs) called without a
key, with a wrong one, one differing only in its last character, and `Basic` credentials — a 401 with
`WWW-Authenticate: Bearer` but for `GET /health` and the search page `GET /`, which must be the packaged page, holding
no data. The model is the tests' tiny random BERT (built here, nothing downloaded).

Rewrites its section of docs/results/reliability.md; exits 1 on any server error, failed check or probe problem:

    python benchmarks/fuzz_service.py [--seeds 0,1,2] [--examples 160] [--out FILE]

`tests/service/test_fuzz_seeds.py` (slow: `SEMSPACE_SLOW=1`) runs it with small numbers.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "service")]

from fuzzing import AuthProbe, Tally, auth_probe, catalog_app, collection_app, fuzz  # noqa: E402
from support import LiveServer, save_tiny_bert, save_tiny_cross_encoder  # noqa: E402

SECTION = "## The service under schemathesis with several seeds, and the API-key probe (issue 29)"
KEY = "s3cret-key-for-the-probe"
SECRETS = ["a man is playing a guitar", "a dog is running", "a cat eats food"]  # what the keyed server stores


def run(work: Path, seeds: list[int], examples: int, log=print) -> tuple[dict[int, dict[str, Tally]], AuthProbe]:
    """Fuzz both servers once per seed, then probe the keyed one; fresh collections each time, under `work`."""
    from semspace import Encoder

    bert = save_tiny_bert(work / "tiny-bert")
    cross_encoder = save_tiny_cross_encoder(work / "tiny-ce", bert)
    encoder = Encoder(str(bert))
    tallies: dict[int, dict[str, Tally]] = {}
    for seed in seeds:
        with LiveServer(collection_app(work / f"s{seed}" / "c", encoder, cross_encoder)) as srv:
            one = fuzz(srv.url, lambda path: True, max_examples=examples, seed=seed)
        log(f"seed {seed}, collection: {one.summary()}")
        with LiveServer(catalog_app(work / f"s{seed}" / "root", encoder)) as srv:
            many = fuzz(srv.url, lambda path: path.startswith("/collections"), max_examples=examples, seed=seed)
        log(f"seed {seed}, folder of collections: {many.summary()}")
        tallies[seed] = {"collection": one, "folder of collections": many}
    with LiveServer(collection_app(work / "keyed" / "c", encoder, cross_encoder, api_key=KEY)) as srv:
        probe = auth_probe(srv.url, KEY, SECRETS)
    log(f"auth probe: {len(probe.routes)} routes, refused {dict(probe.refused)}, open {probe.open_statuses}, "
        f"problems {len(probe.problems)}")  # fmt: skip
    return tallies, probe


def failed(tallies: dict[int, dict[str, Tally]], probe: AuthProbe) -> bool:
    tallies_bad = any(t.server_errors or t.failures for by_server in tallies.values() for t in by_server.values())
    return tallies_bad or bool(probe.problems)


def report(command: str, tallies: dict[int, dict[str, Tally]], probe: AuthProbe, examples: int, seconds: float):
    import schemathesis

    from semspace.evaluate.report import results_header

    header = results_header(SECTION[3:], command)
    all_tallies = [t for by_server in tallies.values() for t in by_server.values()]
    total = sum(t.cases for t in all_tallies)
    errors = sum(len(t.server_errors) for t in all_tallies)
    failures = sum(len(t.failures) for t in all_tallies)
    lines = [
        SECTION,
        "",
        *header[1:],
        f"- schemathesis {schemathesis.__version__}; {seconds:.0f} s in all",
        "",
        "Per seed, a fresh server over a collection (whitened to 2 components, tiny random BERT and cross-encoder;",
        "limits 16 items, 300 characters, 64 000 bytes, k ≤ 20, 100 hits) — every operation — and one over a folder",
        f"of collections — the /collections operations —, positive and negative modes, {examples} examples per",
        "operation and mode (Hypothesis `@seed(n)`, not derandomized, no shrinking), schemathesis' default checks",
        "with the expected statuses of `tests/service/test_fuzz.py` (413 and 400 as documented there).",
        "",
        "| seed | server | operations | cases | by status | server errors | failed checks | s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for seed, by_server in tallies.items():
        for server, t in by_server.items():
            statuses = ", ".join(f"{code}: {n}" for code, n in sorted(t.statuses.items()))
            lines.append(
                f"| {seed} | {server} | {t.operations} | {t.cases} | {statuses} | {len(t.server_errors)} "
                f"| {len(t.failures)} | {t.seconds:.0f} |"
            )
    lines += [
        f"| all | | | **{total}** | | **{errors}** | **{failures}** | |",
        "",
    ]
    examples_of = [e for t in all_tallies for e in t.server_errors[:5] + t.failures[:5]]
    if examples_of:
        lines += ["Server errors and failed checks (first ones):", "", *[f"- `{e[:300]}`" for e in examples_of], ""]
    refused = len(probe.routes) - len({(m, p) for m, p in probe.routes} & {("GET", "/health"), ("GET", "/")})
    lines += [
        f"API key (`api_key=...`, compared with `hmac.compare_digest` in `service/security.py`): {len(probe.routes)}",
        "routes — every path+method of the keyed server's OpenAPI schema, plus /openapi.json, /docs, a /docs asset —",
        "each called without a key, with a wrong key, with the key's last character changed, with `Basic` credentials",
        "and with the key.",
        "",
        "| credentials | routes answering 401 + `WWW-Authenticate: Bearer` | of |",
        "|---|---|---|",
        *[f"| {name} | {probe.refused[name]} | {refused} |" for name in ("none", "wrong", "last char", "Basic")],
        f"| the key | {sum(n for s, n in probe.with_key.items() if s != 401)} not 401 "
        f"({', '.join(f'{s}: {n}' for s, n in sorted(probe.with_key.items()))}) | {len(probe.routes)} |",
        "",
        "Open by design: " + ", ".join(f"{k} → {v}" for k, v in probe.open_statuses.items()) + ". `GET /` is the",
        "search page (issue 25): static HTML that asks for the key in the browser; the probe checks it is the",
        "packaged `page.html`, byte for byte, with and without a key, and holds none of the stored texts or ids.",
        f"Problems: {len(probe.problems)}" + (":" if probe.problems else "."),
        *[f"- `{p}`" for p in probe.problems],
        "",
    ]
    return lines


def write_section(out: Path, lines: list[str]) -> None:
    """Replace the section in `out` (up to the next `## `) or append it."""
    old = out.read_text(encoding="utf-8") if out.exists() else ""
    before, _, rest = old.partition(SECTION)
    after = rest.split("\n## ", 1)
    tail = "\n## " + after[1] if len(after) == 2 else ""
    text = before.rstrip("\n") + ("\n\n" if before.strip() else "") + "\n".join(lines).rstrip("\n") + "\n" + tail
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated Hypothesis seeds")
    parser.add_argument("--examples", type=int, default=160, help="per operation and generation mode")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "reliability.md")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    command = "python benchmarks/fuzz_service.py " + " ".join(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tallies, probe = run(Path(tmp), seeds, args.examples)
    lines = report(command.strip(), tallies, probe, args.examples, time.perf_counter() - start)
    write_section(args.out, lines)
    print("\n".join(lines))
    return 1 if failed(tallies, probe) else 0


if __name__ == "__main__":
    sys.exit(main())
