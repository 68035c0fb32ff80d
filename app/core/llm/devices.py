"""ggml's backend devices as llama.cpp sees them, through ctypes.

llama-cpp-python binds llama.h but not ggml-backend.h. The ggml shared libraries it ships
(`llama_cpp/lib`: libggml, libggml-base, libggml-cpu, plus any GPU backend) are already loaded by
the time `llama_cpp` is imported; opening them again by path returns the same handles, so the
device registry read here is the very one llama.cpp uses when it loads a model.

Registration: devices of backends linked into libggml (the usual wheel: CPU, plus CUDA, Metal,
Vulkan or ROCm in GPU builds) register themselves on the registry's first use. Builds with
`GGML_BACKEND_DL` register nothing until `ggml_backend_load_all()` runs, which
`llama_backend_init()` does when no backend is registered (llama.cpp's src/llama.cpp). We call
`llama_backend_init()` first, exactly as `Llama.__init__` does, so both paths see the same devices.

Signatures follow ggml/include/ggml-backend.h as installed with llama-cpp-python 0.3.36 (our
lower bound): enum ggml_backend_dev_type = CPU, GPU, IGPU, ACCEL, META. Nothing here may crash the
process: a missing library or symbol makes `list_devices()` return [] and `unavailable_reason()`
say why; `cpu_buffer_type()` raises `GgmlUnavailableError` (a LeanCoderError) instead.
"""

from __future__ import annotations

import ctypes
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.errors import LeanCoderError

log = logging.getLogger(__name__)

# enum ggml_backend_dev_type, in header order.
DEVICE_TYPES: tuple[str, ...] = ("cpu", "gpu", "igpu", "accel", "meta")
GGML_BACKEND_DEVICE_TYPE_CPU = 0

# Entries of llama_print_system_info()'s CPU section that describe the build, not the processor.
_BUILD_FLAGS = frozenset(
    {"LLAMAFILE", "OPENMP", "REPACK", "KLEIDIAI", "ACCELERATE", "BLAS", "AMX", "CPU_REPACK"}
)


class GgmlUnavailableError(LeanCoderError):
    """llama.cpp's ggml libraries (or a function they should export) could not be used."""


@dataclass(frozen=True, slots=True)
class GgmlDevice:
    """One ggml backend device (`ggml_backend_dev_get(index)`)."""

    index: int
    name: str  # "CPU", "CUDA0", "MTL0", "Vulkan0", "ROCm0"
    description: str  # the product name: "NVIDIA GeForce RTX 4090", the CPU's brand string
    type: str  # one of DEVICE_TYPES, or "unknown"
    backend: str  # the registry's name: "CPU", "CUDA", "Metal", "Vulkan", "ROCm", "RPC", ...
    free_bytes: int
    total_bytes: int
    device_id: str | None = None  # PCI bus id where the backend knows it

    @property
    def is_gpu(self) -> bool:
        return self.type in ("gpu", "igpu")


class _Props(ctypes.Structure):
    """The leading fields of struct ggml_backend_dev_props (ggml-backend.h, 0.3.36)."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("description", ctypes.c_char_p),
        ("memory_free", ctypes.c_size_t),
        ("memory_total", ctypes.c_size_t),
        ("type", ctypes.c_int),
        ("device_id", ctypes.c_char_p),
        # struct ggml_backend_dev_caps (5 bools) and room for fields a later ggml may append:
        # the callee writes the whole struct it knows, which must never overrun ours.
        ("_rest", ctypes.c_ubyte * 128),
    ]


# name: (restype, argtypes)
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "ggml_backend_reg_count": (ctypes.c_size_t, []),
    "ggml_backend_dev_count": (ctypes.c_size_t, []),
    "ggml_backend_dev_get": (ctypes.c_void_p, [ctypes.c_size_t]),
    "ggml_backend_dev_name": (ctypes.c_char_p, [ctypes.c_void_p]),
    "ggml_backend_dev_description": (ctypes.c_char_p, [ctypes.c_void_p]),
    "ggml_backend_dev_memory": (
        None,
        [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_size_t)],
    ),
    "ggml_backend_dev_type": (ctypes.c_int, [ctypes.c_void_p]),
    "ggml_backend_dev_get_props": (None, [ctypes.c_void_p, ctypes.POINTER(_Props)]),
    "ggml_backend_dev_backend_reg": (ctypes.c_void_p, [ctypes.c_void_p]),
    "ggml_backend_reg_name": (ctypes.c_char_p, [ctypes.c_void_p]),
    "ggml_backend_dev_by_type": (ctypes.c_void_p, [ctypes.c_int]),
    "ggml_backend_dev_buffer_type": (ctypes.c_void_p, [ctypes.c_void_p]),
    "ggml_backend_buft_name": (ctypes.c_char_p, [ctypes.c_void_p]),
}
# Without these there is nothing to list; the others only enrich a device.
_REQUIRED = (
    "ggml_backend_dev_count",
    "ggml_backend_dev_get",
    "ggml_backend_dev_name",
    "ggml_backend_dev_description",
    "ggml_backend_dev_memory",
    "ggml_backend_dev_type",
)


class _Ggml:
    """The bound functions, or why there are none."""

    def __init__(self) -> None:
        self.functions: dict[str, Any] = {}
        self.error: str | None = None
        self.lib_dir: Path | None = None

    def has(self, name: str) -> bool:
        return name in self.functions

    def __getattr__(self, name: str) -> Any:
        try:
            return self.functions[name]
        except KeyError:
            raise AttributeError(name) from None


_lock = threading.Lock()
_ggml: _Ggml | None = None


def _bind() -> _Ggml:
    bound = _Ggml()
    try:
        import llama_cpp
        from llama_cpp import llama_cpp as llama_api
        from llama_cpp._ctypes_extensions import load_shared_library
    except Exception as exc:  # a broken install must not take the app down
        bound.error = f"llama-cpp-python could not be imported ({exc})"
        return bound
    lib_dir = Path(llama_api._base_path)
    bound.lib_dir = lib_dir
    libraries: list[ctypes.CDLL] = []
    for base_name in ("ggml", "ggml-base"):
        try:
            libraries.append(load_shared_library(base_name, lib_dir))
        except (OSError, RuntimeError) as exc:
            log.debug("ggml library %s not loaded: %s", base_name, exc)
    if not libraries:
        bound.error = f"no ggml library found in {lib_dir}"
        return bound
    for name, (restype, argtypes) in _SIGNATURES.items():
        # dlsym on Linux/macOS searches a library's dependencies too; Windows does not, hence
        # both libraries (dev_count lives in ggml, dev_name in ggml-base).
        for library in libraries:
            function = getattr(library, name, None)
            if function is not None:
                function.restype = restype
                function.argtypes = argtypes
                bound.functions[name] = function
                break
    missing = [name for name in _REQUIRED if not bound.has(name)]
    if missing:
        bound.error = f"the ggml library lacks {', '.join(missing)}"
        return bound
    try:
        llama_cpp.llama_backend_init()  # registers devices as Llama() would (see module doc)
    except Exception as exc:
        bound.error = f"llama_backend_init failed ({exc})"
    return bound


def _library() -> _Ggml:
    global _ggml
    with _lock:
        if _ggml is None:
            _ggml = _bind()
        return _ggml


def unavailable_reason() -> str | None:
    """Why ggml's devices cannot be read, or None when they can."""
    return _library().error


def _text(value: bytes | None) -> str:
    return value.decode("utf-8", errors="replace") if value else ""


def _device(ggml: _Ggml, index: int) -> GgmlDevice | None:
    handle = ggml.ggml_backend_dev_get(index)
    if not handle:
        return None
    free = ctypes.c_size_t(0)
    total = ctypes.c_size_t(0)
    ggml.ggml_backend_dev_memory(handle, ctypes.byref(free), ctypes.byref(total))
    type_value = ggml.ggml_backend_dev_type(handle)
    name = _text(ggml.ggml_backend_dev_name(handle))
    backend = ""
    if ggml.has("ggml_backend_dev_backend_reg") and ggml.has("ggml_backend_reg_name"):
        reg = ggml.ggml_backend_dev_backend_reg(handle)
        backend = _text(ggml.ggml_backend_reg_name(reg)) if reg else ""
    return GgmlDevice(
        index=index,
        name=name,
        description=_text(ggml.ggml_backend_dev_description(handle)),
        type=DEVICE_TYPES[type_value] if 0 <= type_value < len(DEVICE_TYPES) else "unknown",
        backend=backend or re.sub(r"\d+$", "", name),
        free_bytes=int(free.value),
        total_bytes=int(total.value),
        device_id=_device_id(ggml, handle, name, type_value),
    )


def _device_id(ggml: _Ggml, handle: int, name: str, type_value: int) -> str | None:
    """The PCI bus id from the device's props, trusted only when the props' prefix reads back
    what the single-field getters said (a ggml with a different struct layout reads as None)."""
    if not ggml.has("ggml_backend_dev_get_props"):
        return None
    props = _Props()
    ggml.ggml_backend_dev_get_props(handle, ctypes.byref(props))
    if _text(props.name) != name or props.type != type_value:
        return None
    return _text(props.device_id) or None


def list_devices() -> list[GgmlDevice]:
    """Every registered ggml device, in registry order (CPU, GPUs, accelerators); [] if unusable."""
    ggml = _library()
    if ggml.error:
        return []
    devices: list[GgmlDevice] = []
    for index in range(int(ggml.ggml_backend_dev_count())):
        device = _device(ggml, index)
        if device is not None:
            devices.append(device)
    return devices


def offload_devices(devices: list[GgmlDevice]) -> list[GgmlDevice]:
    """The devices llama.cpp offloads to by default (split mode "layer"; src/llama.cpp):
    RPC servers first, then GPUs (one per PCI id when two backends see the same card), and
    integrated GPUs only when there is no discrete one. CPU and accelerators are not in it."""
    rpc = [d for d in devices if d.type == "gpu" and d.backend == "RPC"]
    gpus: list[GgmlDevice] = []
    for device in devices:
        if device.type != "gpu" or device.backend == "RPC":
            continue
        if device.device_id and any(g.device_id == device.device_id for g in gpus):
            continue
        gpus.append(device)
    igpus: list[GgmlDevice] = []
    for device in devices:
        if device.type == "igpu" and (not igpus or igpus[-1].backend == device.backend):
            igpus.append(device)
    return rpc + gpus + ([] if gpus else igpus)


def cpu_buffer_type() -> ctypes.c_void_p:
    """The CPU device's buffer type: the `buft` that keeps a tensor in host memory when given in
    `llama_model_params.tensor_buft_overrides` (what `--n-cpu-moe` uses). Never NULL."""
    ggml = _library()
    if ggml.error:
        raise GgmlUnavailableError(f"llama.cpp's device functions are unavailable: {ggml.error}.")
    for name in ("ggml_backend_dev_by_type", "ggml_backend_dev_buffer_type"):
        if not ggml.has(name):
            raise GgmlUnavailableError(f"This llama.cpp build does not export {name}.")
    device = ggml.ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU)
    if not device:
        raise GgmlUnavailableError("llama.cpp has no CPU device registered.")
    buffer_type = ggml.ggml_backend_dev_buffer_type(device)
    if not buffer_type:
        raise GgmlUnavailableError("llama.cpp's CPU device has no buffer type.")
    return ctypes.c_void_p(buffer_type)


def buffer_type_name(buffer_type: ctypes.c_void_p | int) -> str:
    """ggml's name for a buffer type ("CPU", "CUDA0", ...); "" when it cannot be read."""
    ggml = _library()
    if ggml.error or not ggml.has("ggml_backend_buft_name"):
        return ""
    value = buffer_type.value if isinstance(buffer_type, ctypes.c_void_p) else buffer_type
    return _text(ggml.ggml_backend_buft_name(value)) if value else ""


def system_info() -> str:
    """`llama_print_system_info()`: each backend's build and CPU features, e.g.
    "CPU : SSE3 = 1 | AVX2 = 1 | ... | "; "" when llama.cpp is unavailable."""
    try:
        import llama_cpp

        raw = llama_cpp.llama_print_system_info()
    except Exception as exc:
        log.debug("llama_print_system_info failed: %s", exc)
        return ""
    return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)


def parse_system_info(text: str) -> dict[str, dict[str, str]]:
    """ "CPU : AVX = 1 | AVX2 = 1 | CUDA : ARCHS = 890 | " -> {"CPU": {"AVX": "1", ...}, ...}."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for item in text.split("|"):
        item = item.strip()
        if not item:
            continue
        if " : " in item:  # a new backend's section starts with its first entry
            section, _, item = item.partition(" : ")
            current = sections.setdefault(section.strip(), {})
        if current is None:
            continue
        key, sep, value = item.partition("=")
        if sep and key.strip():
            current[key.strip()] = value.strip()
    return sections


def cpu_features(text: str | None = None) -> tuple[str, ...]:
    """The vector features llama.cpp's CPU backend uses ("AVX2", "AVX512", "NEON", ...)."""
    cpu = parse_system_info(system_info() if text is None else text).get("CPU", {})
    return tuple(k for k, v in cpu.items() if v == "1" and k not in _BUILD_FLAGS)
