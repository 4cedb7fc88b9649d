"""The `semspace` command line: one module per command group, every command a thin call into the library.

Modules: `app` (root app, group registration, `main`), `options` (shared options and output helpers), `encode`,
`evaluate` (eval sts|retrieval), `index`, `cur`, `train`, `analysis` (dims, drift), `serve`, `demo`.
"""

from semspace.cli.app import app, main

__all__ = ["app", "main"]
