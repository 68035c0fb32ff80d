"""A fuzz pass over the GGUF header reader: random byte flips, overwrites with extreme numbers and
truncations of real GGUF files (the starter model's header region, and small files the `gguf`
package writes), by seeded random mutation and by hypothesis. The reader must return a header that
holds together or raise ModelFileError, never another exception, within a bounded time and memory;
what it returns must also go through the fit estimate the same way. About 20 s on two cores."""

from __future__ import annotations

import random
import time
import tracemalloc
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.errors import ModelFileError
from app.core.fit.estimate import GIB, MachineBudget, footprint_from_header
from app.core.fit.plan import plan_fit
from app.core.gguf.header import GGUFHeader, read_header
from app.core.gguf.keys import ARCH_KEYS, GENERAL_KEYS
from tests.gguf_bytes import kv_nested_array, kv_u32_array, llama_model

SECONDS_PER_READ = 2.0
PEAK_BYTES = 64 * 1024 * 1024
EXTREMES = [0, 1, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1, 7, 9, 12]
MACHINE = MachineBudget(ram_bytes=16 * GIB)


def small_files(folder: Path) -> list[bytes]:
    """Small GGUF files with every value type: from GGUFWriter, and one written byte by byte
    with a per-layer array and a nested array."""
    made = []
    for index, arch in enumerate(("llama", "qwen3moe")):
        path = folder / f"writer-{index}.gguf"
        writer = gguf.GGUFWriter(path, arch)
        writer.add_name(f"fuzz {arch}")
        writer.add_block_count(2)
        writer.add_context_length(4096)
        writer.add_embedding_length(8)
        writer.add_head_count(2)
        writer.add_head_count_kv(1)
        writer.add_expert_count(4)
        writer.add_expert_used_count(2)
        writer.add_rope_freq_base(10000.0)
        writer.add_bool("fuzz.flag", True)
        writer.add_int64("fuzz.big", -(2**40))
        writer.add_float64("fuzz.f64", 0.5)
        writer.add_array("fuzz.words", ["a", "bb", "ccc"])
        writer.add_array("fuzz.numbers", list(range(100)))
        writer.add_chat_template("{{ messages[0]['content'] }}")
        writer.add_tensor("token_embd.weight", np.zeros((16, 8), dtype=np.float32))
        writer.add_tensor("blk.0.attn_norm.weight", np.ones(8, dtype=np.float32))
        writer.add_tensor("blk.1.attn_q.weight", np.ones((8, 32), dtype=np.float16))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        made.append(path.read_bytes())
    raw = llama_model(
        kv_u32_array("llama.attention.head_count", [2, 2]), kv_nested_array("fuzz.nested", 2),
        block_count=2,
    )
    made.append(raw.to_bytes())
    return made


def mutate(data: bytes, rng: random.Random, region: tuple[int, int] | None = None) -> bytes:
    """One to four mutations: a flipped bit, a random byte, an extreme 4- or 8-byte number, a
    deleted or repeated run, or a truncation."""
    out = bytearray(data)
    low, high = region or (0, len(out))
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(low, max(low + 1, min(high, len(out))))
        kind = rng.randrange(6)
        if kind == 0:
            out[at] ^= 1 << rng.randrange(8)
        elif kind == 1:
            out[at] = rng.randrange(256)
        elif kind in (2, 3):
            width = 8 if kind == 2 else 4
            value = rng.choice(EXTREMES) % (1 << (8 * width))
            out[at : at + width] = value.to_bytes(width, "little")
        elif kind == 4:
            length = rng.randint(1, 16)
            if rng.random() < 0.5:
                del out[at : at + length]
            else:
                out[at:at] = out[at : at + length]
        else:
            del out[at:]
    return bytes(out)


def check_read(path: Path, measure_memory: bool = False) -> GGUFHeader | None:
    """read_header, then the fit estimate: a valid header or ModelFileError, nothing else."""
    if measure_memory:
        tracemalloc.start()
    started = time.monotonic()
    try:
        header = read_header(path)
        _assert_consistent(header)
        plan_fit(footprint_from_header(header), MACHINE)
    except ModelFileError as exc:
        assert str(exc) and "\n" not in str(exc)
        header = None
    finally:
        elapsed = time.monotonic() - started
        if measure_memory:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            assert peak < PEAK_BYTES, f"{peak:,} bytes"
    assert elapsed < SECONDS_PER_READ, f"{elapsed:.1f} s"
    return header


def _assert_consistent(header: GGUFHeader) -> None:
    assert header.data_offset <= header.file_size
    end = header.data_offset
    for tensor in header.tensors:
        assert tensor.n_bytes >= 0 and len(tensor.shape) <= 4
        end = max(end, header.data_offset + tensor.offset + tensor.n_bytes)
    assert end <= header.file_size
    assert header.arch_int("block_count") <= len(header.tensors)
    assert isinstance(header.name, str) and header.name.isprintable()


def test_random_mutations_of_small_gguf_files(tmp_path: Path) -> None:
    rng = random.Random(20260110)
    originals = small_files(tmp_path)
    for data in originals:  # the unmutated files are valid
        path = tmp_path / "original.gguf"
        path.write_bytes(data)
        assert check_read(path) is not None
    target = tmp_path / "fuzzed.gguf"
    outcomes = {"read": 0, "refused": 0}
    for _ in range(1000):
        target.write_bytes(mutate(rng.choice(originals), rng))
        outcomes["read" if check_read(target) is not None else "refused"] += 1
    assert outcomes["read"] > 50 and outcomes["refused"] > 500  # both paths were exercised


def test_mutations_are_bounded_in_memory(tmp_path: Path) -> None:
    rng = random.Random(7)
    originals = small_files(tmp_path)
    target = tmp_path / "fuzzed.gguf"
    for _ in range(150):
        target.write_bytes(mutate(rng.choice(originals), rng))
        check_read(target, measure_memory=True)


@pytest.mark.model
def test_random_mutations_of_the_starter_models_header(starter_path: Path, tmp_path: Path) -> None:
    """The real header (49k tokens, 48k merges, 272 tensors), mutated near its start, in its
    tensor table and anywhere; the file is extended back to the model's size as a sparse file,
    so the weights' bounds checks see a full-size file."""
    header = read_header(starter_path)
    with starter_path.open("rb") as source:
        region = source.read(header.data_offset)
    size = header.file_size
    table = region.rfind(b"token_embd.weight") - 64  # the tensor table starts about here
    assert table > 0
    rng = random.Random(1234)
    target = tmp_path / "starter-fuzzed.gguf"
    refused = 0
    for index in range(90):
        zone = [(0, 4096), (table, len(region)), (0, len(region))][index % 3]
        with target.open("wb") as out:
            out.write(mutate(region, rng, zone))
            out.truncate(size)
        refused += check_read(target) is None
    assert refused > 10


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,  # the same examples in CI every time
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_hypothesis_mutations(tmp_path: Path, data: st.DataObject) -> None:
    originals = _originals(tmp_path)
    original = data.draw(st.sampled_from(originals))
    edits = data.draw(
        st.lists(
            st.tuples(st.integers(0, len(original) - 1), st.binary(min_size=1, max_size=8)),
            min_size=1,
            max_size=4,
        )
    )
    mutated = bytearray(original)
    for at, chunk in edits:
        mutated[at : at + len(chunk)] = chunk
    cut = data.draw(st.integers(0, len(mutated)))
    path = tmp_path / "hypothesis.gguf"
    path.write_bytes(bytes(mutated[:cut] if data.draw(st.booleans()) else mutated))
    check_read(path)


T = gguf.GGUFValueType
_INT_RANGES = {
    T.UINT8: (0, 2**8 - 1), T.INT8: (-(2**7), 2**7 - 1), T.UINT16: (0, 2**16 - 1),
    T.INT16: (-(2**15), 2**15 - 1), T.UINT32: (0, 2**32 - 1), T.INT32: (-(2**31), 2**31 - 1),
    T.UINT64: (0, 2**64 - 1), T.INT64: (-(2**63), 2**63 - 1),
}  # fmt: skip
TYPED_VALUES = st.one_of(
    *(st.tuples(st.just(t), st.integers(lo, hi), st.none()) for t, (lo, hi) in _INT_RANGES.items()),
    st.tuples(st.just(T.FLOAT32), st.floats(width=32), st.none()),
    st.tuples(st.just(T.FLOAT64), st.floats(), st.none()),
    st.tuples(st.just(T.BOOL), st.booleans(), st.none()),
    st.tuples(st.just(T.STRING), st.text(max_size=12), st.none()),
    *(
        st.tuples(st.just(T.ARRAY), st.lists(elements, min_size=1, max_size=4), st.just(sub))
        for elements, sub in (
            (st.integers(0, 2**32 - 1), T.UINT32),
            (st.booleans(), T.BOOL),
            (st.text(max_size=4), T.STRING),
        )
    ),
)
# Every key LeanCoder reads, but the architecture (which decides where the others live).
READ_KEYS = [k for k in GENERAL_KEYS if k != "general.architecture"] + [
    f"llama.{k}" for k in ARCH_KEYS
]


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(values=st.dictionaries(st.sampled_from(READ_KEYS), TYPED_VALUES, min_size=1, max_size=3))
def test_hypothesis_any_type_for_the_keys_leancoder_reads(
    tmp_path: Path, values: dict[str, tuple[gguf.GGUFValueType, Any, gguf.GGUFValueType | None]]
) -> None:
    """Structure-aware: well-formed files whose known keys hold any type and value (text, NaN,
    lists, huge or negative numbers), written by GGUFWriter; byte flips rarely get this far."""
    path = tmp_path / "typed.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    if "llama.block_count" not in values:
        writer.add_block_count(1)
    for key, (vtype, value, sub_type) in values.items():
        writer.add_key_value(key, value, vtype, sub_type)
    writer.add_tensor("token_embd.weight", np.zeros((16, 8), dtype=np.float32))
    writer.add_tensor("blk.0.attn_norm.weight", np.ones(8, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    check_read(path)


_CACHE: dict[Path, list[bytes]] = {}


def _originals(folder: Path) -> list[bytes]:
    if folder not in _CACHE:
        _CACHE[folder] = small_files(folder)
    return _CACHE[folder]
