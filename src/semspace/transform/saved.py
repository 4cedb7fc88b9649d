"""The on-disk layout of a saved :class:`~semspace.transform.whitening.Whitening`, readable without scikit-learn.

A collection opens its transform's header through this module, so `semspace index info` / `delete` on a whitened
collection never import scikit-learn; the transform itself is loaded when vectors have to be projected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semspace._io import read_artifact_json

CONFIG = "whitening.json"
ARRAYS = "whitening.npz"
FORMAT = "semspace.whitening"


@dataclass(frozen=True)
class SavedWhitening:
    """The JSON half of a saved Whitening: its hyper-parameters and the shape of the statistics behind it."""

    params: dict[str, Any]
    n_features: int
    n_samples_seen: int

    @property
    def n_components(self) -> int:
        """Output dimension k (all `n_features` when `n_components` is None), as `Whitening.n_components_`."""
        k = self.params.get("n_components")
        return int(k) if k is not None else self.n_features


def read_saved_whitening(folder: str | Path) -> SavedWhitening:
    """Read and check `folder/whitening.json` (ArtifactError when missing, corrupt or of another format)."""
    config = read_artifact_json(Path(folder) / CONFIG, FORMAT)
    return SavedWhitening(dict(config["params"]), int(config["n_features"]), int(config["n_samples_seen"]))
