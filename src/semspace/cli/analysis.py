"""`semspace dims` and `semspace drift`: how many dimensions a set of vectors needs, and how far two sets are apart.

Inputs are `.npy` files (2-D float arrays, e.g. from `semspace encode -o x.npy`) or text files (`.txt` one text per
line, `.jsonl` / `.csv` with a "text" field) encoded on the fly. Collections as inputs come later, with search.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from semspace.cli.options import AsJson, Model, OptionalCacheDir, echo_report, note, number_list

if TYPE_CHECKING:
    import numpy as np

    from semspace.encode import Encoder

INPUT_HELP = (
    ".npy vectors (2-D float), or texts to encode: .txt (one per line), .jsonl/.csv (a 'text' field). "
    "Collections as inputs come later."
)


@dataclass
class _Encoding:
    """The encoder shared by every text input of one command, made on first use."""

    model: str | None
    cache_dir: Path | None
    _encoder: Encoder | None = None

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            from semspace.encode import Encoder

            self._encoder = Encoder(self.model)
        return self._encoder

    def encode(self, texts: list[str]) -> np.ndarray:
        if self.cache_dir is None:
            return self.encoder.encode(texts)
        from semspace.encode import EmbeddingCache

        return EmbeddingCache(self.cache_dir).encode(self.encoder, texts)[self.encoder.pooling]


def load_vectors(source: Path, encoding: _Encoding) -> tuple[np.ndarray, str]:
    """Vectors of an input file (at least 2) and a short description of where they came from."""
    from semspace.data.files import DOCUMENT_SUFFIXES, read_documents, read_vectors
    from semspace.errors import InvalidInputError, InvalidParameterError

    suffix = source.suffix.lower()
    if suffix == ".npy":
        vectors = read_vectors(source, min_rows=2)
        return vectors, f"{source} ({vectors.shape[0]} x {vectors.shape[1]}, .npy)"
    if suffix not in DOCUMENT_SUFFIXES:
        raise InvalidParameterError(
            f"{source.name}: unsupported input; use .npy vectors or texts (.txt, .jsonl, .csv). "
            "Collections as inputs come later."
        )
    texts = read_documents(source).texts
    if len(texts) < 2:
        raise InvalidInputError(f"{source}: needs at least 2 texts; got {len(texts)}.")
    vectors = encoding.encode(texts)
    return vectors, f"{source} ({vectors.shape[0]} texts encoded with {encoding.encoder.model_id})"


def dims(
    source: Annotated[Path, typer.Argument(help=INPUT_HELP)],
    model: Model = None,
    dev_pairs: Annotated[
        Path | None,
        typer.Option(
            help="TSV s1<TAB>s2<TAB>score: Spearman vs k (texts input, or .npy with the --model that made it)."
        ),
    ] = None,
    ks: Annotated[str | None, typer.Option(help="Comma list of k for the Spearman curves (default 8,16,…,d).")] = None,
    jl_eps: Annotated[str, typer.Option(help="Comma list of ε for the JL bound.")] = "0.1,0.2,0.5",
    seed: Annotated[int, typer.Option(min=0, help="Seed of the random projection.")] = 0,
    out: Annotated[Path, typer.Option(help="Folder for dims.png.")] = Path("."),
    cache_dir: OptionalCacheDir = None,
    as_json: AsJson = False,
) -> None:
    """How many dimensions: the JL and 8.33 ln N rules for N, the covariance spectrum (PNG), Spearman vs k."""
    import numpy as np

    from semspace.analysis.dims import dimension_report, format_dims_report, plot_dims
    from semspace.data import read_senteval_cn
    from semspace.errors import InvalidInputError, InvalidParameterError

    if dev_pairs is not None and source.suffix.lower() == ".npy" and model is None:
        raise InvalidParameterError(
            "--dev-pairs with a .npy input needs --model, the encoder that made those vectors "
            "(a .npy file does not record it)."
        )
    encoding = _Encoding(model, cache_dir)
    vectors, description = load_vectors(source, encoding)
    pairs = None
    if dev_pairs is not None:
        data = read_senteval_cn(dev_pairs)
        if len(data) < 2:
            raise InvalidInputError(f"{dev_pairs}: needs at least 2 scored pairs; got {len(data)}.")
        a, b = encoding.encode(data.sentences1), encoding.encode(data.sentences2)
        if a.shape[1] != vectors.shape[1]:
            raise InvalidInputError(
                f"--dev-pairs vectors have {a.shape[1]} dimensions ({encoding.encoder.model_id}) but {source} has "
                f"{vectors.shape[1]}; pass the --model that made the vectors."
            )
        pairs = (a, b, np.asarray(data.scores))
    report = dimension_report(
        vectors,
        pairs,
        ks=number_list(ks, "--ks") if ks else None,
        jl_eps=number_list(jl_eps, "--jl-eps", float),
        seed=seed,
    )
    report["source"] = description
    note(f"wrote {plot_dims(report, out / 'dims.png')}")
    echo_report(report, as_json, lambda: f"input: {description}\n{format_dims_report(report)}")


def drift(
    a: Annotated[Path, typer.Argument(help="First set (A). " + INPUT_HELP)],
    b: Annotated[Path, typer.Argument(help="Second set (B), same kind of vectors as A.")],
    model: Model = None,
    eps: Annotated[
        float | None,
        typer.Option(help="Ridge for KL/Bhattacharyya: eps × mean variance added to both covariances."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for drift_spectra.png (default: no plot).")] = None,
    cache_dir: OptionalCacheDir = None,
    as_json: AsJson = False,
) -> None:
    """Drift between two sets: KL both ways, Bhattacharyya, W2 of their Gaussian fits; crowding and isotropy."""
    from semspace.analysis.dims import plot_spectra
    from semspace.analysis.gaussian import drift_report, format_drift

    encoding = _Encoding(model, cache_dir)
    vectors_a, description_a = load_vectors(a, encoding)
    vectors_b, description_b = load_vectors(b, encoding)
    names = (str(a), str(b)) if str(a) != str(b) else (f"A:{a}", f"B:{b}")
    report = drift_report(vectors_a, vectors_b, eps=eps, names=names)
    report["sources"] = [description_a, description_b]
    if out is not None:
        png = plot_spectra(dict(zip(("A", "B"), (vectors_a, vectors_b), strict=True)), out / "drift_spectra.png")
        note(f"wrote {png}")
    echo_report(report, as_json, lambda: f"A: {description_a}\nB: {description_b}\n{format_drift(report)}")
