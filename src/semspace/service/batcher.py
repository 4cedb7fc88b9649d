"""Dynamic batching: concurrent small `encode` calls (one per /embed, /search, /v1/embeddings request) are gathered
for a few milliseconds into one engine call, as Hugging Face TEI and Infinity do, so 32 single-text clients cost
about one batch of 32 instead of 32 batches of one.

The app owns one :class:`Batcher` (``ServiceState.batcher``); routes get :attr:`Batcher.encoder`, a stand-in for the
encoder whose small `encode` calls go through the queue. The queue is bounded: a request that finds it full raises
EncoderBusyError; one whose result is not back within ``timeout_s`` raises EncoderTimeoutError. The service maps
them to 429 and 503 (service/errors.py), JSON errors like every other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool

from semspace.encode.encoder import validate_texts
from semspace.errors import EncoderBusyError, EncoderTimeoutError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchConfig:
    """How the service gathers requests.

    max_wait_ms: how long the first request of a batch waits for others (negative: batching off).
    max_batch_texts: texts per engine call at most (a batch closes early when it has them).
    max_request_texts: larger requests skip the queue (they are a batch already).
    max_queue: pending requests; one more is answered 429.
    timeout_s: a request waiting longer is answered 503.
    """

    max_wait_ms: float = 3.0
    max_batch_texts: int = 128
    max_request_texts: int = 32
    max_queue: int = 1024
    timeout_s: float = 30.0


@dataclass
class _Job:
    texts: list[str]
    key: tuple[Any, ...]
    done: threading.Event | None = None  # set for a request waited on from a thread (`encode`)
    result: np.ndarray | None = None
    error: BaseException | None = None
    cancelled: bool = False
    count_tokens: bool = False  # also count each text's tokens (OpenAI's `usage`), batched on the worker thread
    lengths: list[int] | None = None
    # set for a request awaited on the event loop (`encode_async`): the worker resolves the future there
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future | None = None

    @staticmethod
    def finish_all(jobs: list[_Job]) -> None:
        """Wake the waiters: one hand-off per event loop for the whole batch (each wakes the loop through its
        self-pipe), not one per request."""
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in jobs:
            if job.done is not None:
                job.done.set()
            if job.future is not None and job.loop is not None:
                by_loop.setdefault(job.loop, []).append(job)
        for loop, waiting in by_loop.items():
            # its loop may have closed (the requests gave up): nobody waits then; keep the worker alive
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_Job._resolve_all, waiting)

    @staticmethod
    def _resolve_all(jobs: list[_Job]) -> None:
        for job in jobs:
            job._resolve()

    def _resolve(self) -> None:
        assert self.future is not None
        if self.future.done():  # timed out and cancelled meanwhile
            return
        if self.error is not None:
            self.future.set_exception(self.error)
        else:
            self.future.set_result(self)


class Batcher:
    """One worker thread that drains a bounded queue of encode jobs, merging those that arrive within
    ``max_wait_ms`` (and share `normalize` and prompt) into one `Encoder.encode` call."""

    def __init__(
        self, encoder: Any, config: BatchConfig | None = None, on_batch: Callable[[int], None] | None = None
    ) -> None:
        self.target = encoder
        self.config = config or BatchConfig()
        self.on_batch = on_batch  # told the texts of every encode call (the service's histogram)
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=self.config.max_queue)
        self.encoder = BatchedEncoder(self)
        self.n_calls = 0  # engine calls made (for tests and metrics)
        self.n_jobs = 0
        self._thread = threading.Thread(target=self._work, name="semspace-batcher", daemon=True)
        self._thread.start()

    def encode(self, texts: list[str], normalize: bool | None = None, **kwargs: Any) -> np.ndarray:
        """`encoder.encode(texts, normalize=...)` through the queue; EncoderBusyError when it is full,
        EncoderTimeoutError past the timeout."""
        done = threading.Event()
        job = _Job(list(texts), (normalize, tuple(sorted(kwargs.items()))), done=done)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise EncoderBusyError("Too many requests are waiting for the encoder; retry shortly.") from None
        if not done.wait(self.config.timeout_s):
            job.cancelled = True
            raise self._too_slow()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    async def encode_async(self, texts: list[str], normalize: bool | None = None, **kwargs: Any) -> np.ndarray:
        """:meth:`encode` for a coroutine route: awaits the result on the event loop (no thread is parked per
        request); the same errors."""
        job = await self._done(texts, normalize, kwargs, count_tokens=False)
        assert job.result is not None
        return job.result

    async def encode_counted_async(
        self, texts: list[str], normalize: bool | None = None, **kwargs: Any
    ) -> tuple[np.ndarray, list[int] | None]:
        """:meth:`encode_async` and each text's tokens as the encoder's `token_lengths` counts them (None when it
        cannot): counted on the worker thread, one tokenizer call for every request of the batch, instead of a
        thread hop per request."""
        job = await self._done(texts, normalize, kwargs, count_tokens=True)
        assert job.result is not None
        return job.result, job.lengths

    async def _done(self, texts: list[str], normalize: bool | None, kwargs: dict, count_tokens: bool) -> _Job:
        loop = asyncio.get_running_loop()
        key = (normalize, tuple(sorted(kwargs.items())))
        future: asyncio.Future = loop.create_future()
        job = _Job(list(texts), key, count_tokens=count_tokens, loop=loop, future=future)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise EncoderBusyError("Too many requests are waiting for the encoder; retry shortly.") from None
        # one timer per request that fails its future when the answer is late (asyncio.wait_for would add a
        # waiter future and two callbacks per request on the event loop)
        timer = loop.call_later(self.config.timeout_s, self._expire, job)
        try:
            return await future
        finally:
            timer.cancel()
            job.cancelled = job.cancelled or future.cancelled()  # the request gave up: skip its texts

    def _expire(self, job: _Job) -> None:
        if job.future is not None and not job.future.done():
            job.cancelled = True
            job.future.set_exception(self._too_slow())

    def _too_slow(self) -> EncoderTimeoutError:
        return EncoderTimeoutError(f"The encoder did not answer within {self.config.timeout_s:g} s; retry later.")

    def close(self) -> None:
        """Stop the worker once the queued jobs are done."""
        self._queue.put(None)
        self._thread.join(timeout=self.config.timeout_s)

    def _work(self) -> None:
        wait = self.config.max_wait_ms / 1000
        while True:
            job = self._queue.get()
            if job is None:
                return
            jobs, n = [job], len(job.texts)
            deadline = time.monotonic() + wait
            stop = False
            while n < self.config.max_batch_texts:
                remaining = deadline - time.monotonic()
                try:
                    nxt = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                jobs.append(nxt)
                n += len(nxt.texts)
            self._run(jobs)
            if stop:
                return

    def _run(self, jobs: list[_Job]) -> None:
        groups: dict[tuple[Any, ...], list[_Job]] = {}
        for job in jobs:
            if not job.cancelled:
                groups.setdefault(job.key, []).append(job)
        for (normalize, extra), group in groups.items():
            texts = [t for job in group for t in job.texts]
            try:
                vectors = self.target.encode(texts, normalize=normalize, show_progress_bar=False, **dict(extra))
                self.n_calls += 1
                self.n_jobs += len(group)
                if self.on_batch is not None:
                    self.on_batch(len(texts))
                start = 0
                for job in group:
                    job.result = vectors[start : start + len(job.texts)]
                    start += len(job.texts)
                self._count_tokens([job for job in group if job.count_tokens])
            except Exception as exc:  # every request of the group gets the error (its texts were valid alone)
                logger.exception("batched encode failed")
                for job in group:
                    job.error = exc
            _Job.finish_all(group)

    def _count_tokens(self, jobs: list[_Job]) -> None:
        if not jobs:
            return
        lengths = token_lengths(self.target, [t for job in jobs for t in job.texts])
        if lengths is None:
            return
        start = 0
        for job in jobs:
            job.lengths = [int(n) for n in lengths[start : start + len(job.texts)]]
            start += len(job.texts)


class BatchedEncoder:
    """The encoder as routes see it: attributes are the encoder's; `encode` of a small list goes through the
    batcher, anything else (one string, a large list, `convert_to_tensor`, …) straight to the encoder."""

    _BATCHED = frozenset({"normalize", "normalize_embeddings", "show_progress_bar", "prompt", "prompt_name"})

    def __init__(self, batcher: Batcher) -> None:
        self._batcher = batcher

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batcher.target, name)

    def _batchable(self, sentences: str | Sequence[str], kwargs: dict[str, Any]) -> tuple[list[str], dict] | None:
        """(texts, keywords for the batcher) when this call goes through the queue, else None."""
        if (
            isinstance(sentences, str)
            or not kwargs.keys() <= self._BATCHED
            or len(sentences) > self._batcher.config.max_request_texts
        ):
            return None
        texts = validate_texts(sentences)  # one request's bad text fails that request only
        if not texts:
            return None
        kwargs = dict(kwargs)
        normalize = kwargs.pop("normalize_embeddings", None)
        normalize = kwargs.pop("normalize", None) if normalize is None else normalize
        kwargs.pop("show_progress_bar", None)
        return texts, {"normalize": normalize} | {k: v for k, v in kwargs.items() if v is not None}

    def encode(self, sentences: str | Sequence[str], **kwargs: Any) -> Any:
        batched = self._batchable(sentences, kwargs)
        if batched is None:
            return self._batcher.target.encode(sentences, **kwargs)
        return self._batcher.encode(batched[0], **batched[1])

    async def encode_async(self, sentences: str | Sequence[str], **kwargs: Any) -> Any:
        """`encode` from a coroutine: small calls await the batcher; others run in the thread pool."""
        batched = self._batchable(sentences, kwargs)
        if batched is None:
            return await run_in_threadpool(self._batcher.target.encode, sentences, **kwargs)
        return await self._batcher.encode_async(batched[0], **batched[1])

    async def encode_counted_async(
        self, sentences: Sequence[str], **kwargs: Any
    ) -> tuple[np.ndarray, list[int] | None]:
        """`encode_async` and each text's token count (`token_lengths`; None when the encoder cannot count)."""
        batched = self._batchable(sentences, kwargs)
        if batched is None:
            return await run_in_threadpool(encode_counted, self._batcher.target, list(sentences), kwargs)
        return await self._batcher.encode_counted_async(batched[0], **batched[1])


def encode_counted(encoder: Any, texts: list[str], kwargs: dict[str, Any]) -> tuple[np.ndarray, list[int] | None]:
    """`encoder.encode(texts, **kwargs)` and its :func:`token_lengths`, in one call."""
    return encoder.encode(texts, **kwargs), token_lengths(encoder, texts)


def token_lengths(encoder: Any, texts: list[str]) -> list[int] | None:
    """Tokens per text (special tokens included, before truncation) from the encoder's own tokenizer; None when the
    encoder cannot count (an override without a backend)."""
    count = getattr(encoder, "token_lengths", None)
    return None if count is None else count(texts)
