"""What this CPU's vector units can do: the instruction-set flags that decide which engine is fast and which precision
is native (bf16 dot products, int8 dot products) rather than emulated.

Read from ``/proc/cpuinfo`` on Linux (the kernel's view: what the hypervisor exposes in a VM), else from PyTorch's own
CPU probes (``torch.cpu._is_*_supported``, the cpuinfo library PyTorch dispatches its kernels with).
"""

from __future__ import annotations

import functools
import hashlib
import platform
from dataclasses import dataclass
from pathlib import Path

# The flags that matter for inference, as /proc/cpuinfo spells them (x86, then aarch64's "Features").
FLAGS = (
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "asimd",
    "asimddp",
    "i8mm",
    "bf16",
    "sve",
)
# Native bf16 arithmetic (dot products in bf16, fp32 accumulate); without them PyTorch's bf16 is emulated in fp32.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
# Native int8 dot products (u8×s8 → s32 in one instruction, no int16 saturation).
INT8_DOT_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm"})


@dataclass(frozen=True)
class CPUFeatures:
    """A CPU model name, its inference-relevant ISA flags (sorted) and where they were read."""

    model: str
    flags: tuple[str, ...]
    source: str

    @property
    def bf16_units(self) -> bool:
        """Whether bf16 runs on native units (AVX512_BF16, AMX-BF16, Arm BF16), not emulated."""
        return bool(BF16_FLAGS & set(self.flags))

    @property
    def int8_dot(self) -> bool:
        """Whether int8 dot products are native (VNNI, AMX-INT8, Arm dot product / i8mm)."""
        return bool(INT8_DOT_FLAGS & set(self.flags))

    @property
    def isa_class(self) -> str:
        """A short name of the machine class the engine choice depends on, best unit first: ``amx``, ``avx512-bf16``,
        ``avx512-vnni``, ``avx512``, ``avx2-vnni``, ``avx2``, ``arm-bf16``, ``arm-dot``, ``baseline``."""
        f = set(self.flags)
        for name, needs in (
            ("amx", {"amx_tile"}),
            ("avx512-bf16", {"avx512_bf16"}),
            ("avx512-vnni", {"avx512_vnni"}),
            ("avx512", {"avx512f"}),
            ("avx2-vnni", {"avx2", "avx_vnni"}),
            ("avx2", {"avx2"}),
            ("arm-bf16", {"asimd", "bf16"}),
            ("arm-dot", {"asimddp"}),
        ):
            if needs <= f:
                return name
        return "baseline"

    def describe(self) -> str:
        """One line for result headers and logs: model, class and flags."""
        return f"{self.model} ({self.isa_class}: {' '.join(self.flags) or 'no vector flags found'}; from {self.source})"

    def key(self) -> str:
        """A short hash of the model and flags: what a machine-specific cache entry is keyed by."""
        text = f"{self.model}|{' '.join(self.flags)}"
        return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def parse_cpuinfo(text: str) -> CPUFeatures:
    """The features in a ``/proc/cpuinfo`` text (the first processor's block)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        name, _, value = line.partition(":")
        fields.setdefault(name.strip().lower(), value.strip())
    present = set((fields.get("flags") or fields.get("features") or "").split())
    model = fields.get("model name") or fields.get("hardware") or fields.get("cpu part") or platform.processor()
    return CPUFeatures(model or "unknown CPU", tuple(sorted(present & set(FLAGS))), "/proc/cpuinfo")


def _torch_features() -> CPUFeatures:
    """PyTorch's probes (any OS): the x86 flags it reports."""
    try:
        import torch.cpu as tc
    except ImportError:
        return CPUFeatures(platform.processor() or "unknown CPU", (), "none")
    probes = {
        "avx2": "_is_avx2_supported",
        "avx512f": "_is_avx512_supported",
        "avx512_vnni": "_is_vnni_supported",
        "avx512_bf16": "_is_avx512_bf16_supported",
        "amx_tile": "_is_amx_tile_supported",
    }
    flags = [flag for flag, probe in probes.items() if getattr(tc, probe, lambda: False)()]
    return CPUFeatures(platform.processor() or platform.machine() or "unknown CPU", tuple(sorted(flags)), "torch")


@functools.cache
def cpu_features() -> CPUFeatures:
    """This machine's :class:`CPUFeatures` (read once per process)."""
    try:
        found = parse_cpuinfo(Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return _torch_features()
    return found if found.flags else _torch_features()
