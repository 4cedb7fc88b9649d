"""Exception classes: one per kind of bad input, so callers (and the CLI) can react precisely."""

from __future__ import annotations

from errno import EROFS


class SemspaceError(Exception):
    """Base class of every error semspace raises on purpose."""


class InvalidParameterError(SemspaceError, ValueError):
    """A constructor or function argument is outside its allowed range or set."""


class InvalidInputError(SemspaceError, ValueError):
    """Input data is unusable: empty, wrong shape or dimension, NaN/inf, wrong type."""


class InputTypeError(SemspaceError, TypeError):
    """An element of the input has the wrong type (e.g. a non-string text)."""


class NotFittedError(SemspaceError, ValueError):
    """A transform was used before `fit`."""


class ModelLoadError(SemspaceError, OSError):
    """A model name or path could not be resolved or loaded (no download is attempted by default)."""


class UnknownPoolingError(InvalidParameterError):
    """The pooling name is not one of the supported poolings, or the model cannot honour it."""


class DatasetFormatError(SemspaceError, ValueError):
    """A dataset file is malformed; the message names the file and the line number."""

    def __init__(self, path: object, line: int | None, reason: str) -> None:
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


class DatasetNotFoundError(SemspaceError, FileNotFoundError):
    """A dataset file or folder does not exist."""


class MissingExtraError(SemspaceError, ImportError):
    """An optional part of semspace is used without its extra installed; the message names `pip install` for it."""


class ArtifactError(SemspaceError, OSError):
    """A saved artifact (transform, cache) is missing, truncated, corrupt or of an unknown format version."""


def check_param(name: str, owner: str, ok: bool, expected: str, got: object) -> None:
    """Raise InvalidParameterError with the house message shape when `ok` is false."""
    if not ok:
        raise InvalidParameterError(f"The '{name}' parameter of {owner} must be {expected}. Got {got!r} instead.")


class CollectionError(SemspaceError, OSError):
    """A folder is not a semspace collection, or its files are truncated, corrupt or from an unknown format."""


class CollectionBusyError(CollectionError):
    """Another process or thread held the collection's write lock past the timeout; retrying later can succeed."""


class CollectionNotFoundError(SemspaceError, KeyError):
    """No collection of that name in the catalog (or on the server)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class CollectionExistsError(SemspaceError, ValueError):
    """A collection of that name already exists (use get_or_create_collection to reuse it)."""


class StorageError(CollectionError):
    """The file system refused a write: full (ENOSPC, EDQUOT), read-only (EROFS), not permitted (EACCES, EPERM) or
    failing (EIO). `errno` says which; the message says what was and was not stored. The service answers 507 for a
    full disk, 503 otherwise."""

    def __init__(self, errno: int, message: str) -> None:
        super().__init__(message)
        self.errno = errno


class ReadOnlyCollectionError(StorageError):
    """A write (add, upsert, delete, transform, compact) on a collection opened read-only (its folder is not
    writable, or `read_only=True`): refused before anything is encoded or written."""

    def __init__(self, message: str) -> None:
        super().__init__(EROFS, message)


class DocumentNotFoundError(SemspaceError, KeyError):
    """A document id is not in the collection."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class DuplicateIdError(InvalidInputError):
    """A document id is already in the collection (or repeated within one add)."""


class SingularCovarianceError(InvalidInputError):
    """A covariance matrix is singular or too ill-conditioned for a Gaussian distance; pass a ridge `eps`."""


class NoBiEncoderError(InvalidParameterError):
    """Retrieve-and-rerank (or a choice between it and CUR) was asked of a CUR searcher without a bi-encoder side
    (item vectors and a query encoder); the message says how to build one with it."""


class EncoderBusyError(SemspaceError):
    """Too many encode requests are already waiting for the encoder (the service's bounded queue is full); retrying
    shortly can succeed. The service answers 429."""


class EncoderTimeoutError(SemspaceError, TimeoutError):
    """The encoder did not answer within the service's timeout; retrying later can succeed. The service answers
    503."""


class ServiceError(SemspaceError):
    """A semspace server answered with an error no library exception stands for (401, 403, 5xx), or could not be
    reached; `status` is the HTTP status (None when there was no answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
