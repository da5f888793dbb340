"""The WaveNet generation loop in C, compiled on first use and loaded with ctypes.

`WaveNet.generate` spends most of a sample in Python's dispatch of ~100 small tensor operations
(about 320 us a step even with one row in the batch). `wavenet_kernel.c` runs the same loop with
only the arithmetic left, and splits the folds of a line between threads, so a short line costs
a fraction of its duration instead of more than it (README, "Speed").

The source is compiled once per machine with the system's C compiler (`cc`, or `$CC`) into the
user's cache directory, named by a hash of the source, the flags, the compiler and the CPU, and loaded
with ctypes (which releases the GIL during the call). If there is no compiler, or it fails,
`load()` returns None and generation stays in Python: same samples, only slower. Set
`STUDIO_NATIVE=0` to force that.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import torch

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("wavenet_kernel.c")
# No -ffast-math: it may set flush-to-zero for the whole process and reorders sums.
FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-shared", "-fPIC", "-pthread"]

_FP = ctypes.POINTER(ctypes.c_float)
_IP = ctypes.POINTER(ctypes.c_int)


class Job(ctypes.Structure):
    """Mirrors `Job` in wavenet_kernel.c, field for field."""

    _fields_ = [(name, ctypes.c_int) for name in ("B", "T", "hop", "L", "k", "R", "G", "S", "K1", "C", "P")] + [
        ("dil", _IP),
        *[(name, _FP) for name in ("start", "delta", "taps", "w_res", "w_skip", "b_skip", "h1", "b1", "h2", "b2",
                                   "table", "t_res", "t_pred", "levels", "edges", "coef")],
        ("near", _IP),
        ("draws", _FP),
        ("teacher", _FP),
        ("floor_p", ctypes.c_float),
        ("res_scale", ctypes.c_float),
        ("out", _FP),
    ]


_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_tried = False


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "dubbing-studio" / "native"


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")


def _cpu() -> str:
    """What -march=native compiles for (a cache shared between machines must not hand one
    machine's instructions to another): the CPU's model and feature flags where Linux says."""
    try:
        with open("/proc/cpuinfo") as f:
            return "".join(sorted({line for line in f if line.startswith(("model name", "flags"))}))
    except OSError:
        return platform.machine() + platform.processor()


def _build(cc: str) -> Path:
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    key = hashlib.sha256(b"\0".join(x.encode() for x in (SOURCE.read_text(), " ".join(FLAGS), version, _cpu())))
    key = key.hexdigest()[:16]
    for root in (_cache_dir(), Path(tempfile.gettempdir()) / "dubbing-studio-native"):
        target = root / f"wavenet_kernel-{key}.so"
        if target.exists():
            return target
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        # compile beside the target and rename, so a concurrent process never loads half a file
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=root)
        os.close(fd)
        try:
            proc = subprocess.run([cc, *FLAGS, "-o", tmp, str(SOURCE), "-lm"], capture_output=True, text=True,
                                  timeout=120)
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr.strip()[-2000:])
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return target
    raise OSError("no writable cache directory for the compiled kernel")


def load() -> ctypes.CDLL | None:
    """The compiled kernel, or None where it cannot be had (logged once)."""
    global _lib, _tried
    with _lock:
        if _tried:
            return _lib
        _tried = True
        if os.environ.get("STUDIO_NATIVE", "1") == "0":
            return None
        cc = _compiler()
        if cc is None:
            log.warning("no C compiler found: WaveNet generation runs in Python (several times slower)")
            return None
        try:
            path = _build(cc)
            try:
                lib = ctypes.CDLL(str(path))
            except OSError:  # a cached file cut short or damaged: build it again, once
                path.unlink(missing_ok=True)
                lib = ctypes.CDLL(str(_build(cc)))
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            log.warning("could not build the WaveNet kernel, generation runs in Python: %s", exc)
            return None
        lib.wavenet_generate.argtypes = [ctypes.POINTER(Job), ctypes.c_int]
        lib.wavenet_generate.restype = ctypes.c_int
        _lib = lib
        return _lib


def threads() -> int:
    """Threads for one call: the cores this process may use (torch's intra-op setting)."""
    return max(1, torch.get_num_threads())


def generate(lib: ctypes.CDLL, dims: dict, tensors: dict, floor: float, res_scale: float, out: torch.Tensor,
             n_threads: int) -> None:
    """Run the kernel on prepared tensors (see `Job`'s comments for names and layouts); fills `out`."""
    keep = {}  # contiguous float32 / int32 copies, alive until the call returns

    def ptr(name, kind=_FP):
        t = tensors.get(name)
        if t is None:
            return None
        t = t.detach().to("cpu", torch.int32 if kind is _IP else torch.float32).contiguous()
        keep[name] = t
        return ctypes.cast(t.data_ptr(), kind)

    assert out.dtype == torch.float32 and out.is_contiguous()
    job = Job(**dims, dil=ptr("dil", _IP), near=ptr("near", _IP), floor_p=floor, res_scale=res_scale,
              out=ctypes.cast(out.data_ptr(), _FP),
              **{name: ptr(name) for name in ("start", "delta", "taps", "w_res", "w_skip", "b_skip", "h1", "b1",
                                              "h2", "b2", "table", "t_res", "t_pred", "levels", "edges", "coef",
                                              "draws", "teacher")})
    if lib.wavenet_generate(ctypes.byref(job), int(n_threads)) != 0:
        raise MemoryError("the WaveNet kernel could not allocate its buffers")
