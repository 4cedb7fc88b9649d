"""Connect to Ray for one job: a local runtime on 127.0.0.1 (no address), the running cluster (``"auto"``), or a
cluster at an address (``"ray://host:10001"``, ``"host:6379"``). A runtime that is already up is reused as is."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import ray

logger = logging.getLogger(__name__)

LOCAL = "local"


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Ray for the duration of a `with` block.

    `address` None or ``"local"`` starts a local runtime (dashboard off, on 127.0.0.1, `num_cpus` CPUs, default all)
    and stops it at the end; ``"auto"`` joins the cluster this machine belongs to; anything else is passed to
    `ray.init(address=...)`. When Ray is already initialised (a test fixture, a notebook) it is used and left up.
    """
    if ray.is_initialized():
        yield
        return
    if address in (None, LOCAL):
        ray.init(
            address="local",
            num_cpus=num_cpus,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
            configure_logging=False,
        )
        logger.info("started a local Ray runtime (%s CPUs)", ray.cluster_resources().get("CPU"))
    else:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
        logger.info("joined the Ray cluster at %s (%s CPUs)", address, ray.cluster_resources().get("CPU"))
    try:
        yield
    finally:
        ray.shutdown()
