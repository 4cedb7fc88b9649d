"""A real local Ray runtime on 127.0.0.1 (2 CPUs, no dashboard) for the whole folder, stopped at the end."""

from __future__ import annotations

import pytest

ray = pytest.importorskip("ray", reason="needs the ray extra: pip install 'semspace[ray]'")


@pytest.fixture(scope="session")
def ray_runtime():
    import ray.data

    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        configure_logging=False,
    )
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    yield
    ray.shutdown()
