"""The door to llama.cpp (app.core.llm.backend.LlamaBackend) against the real starter model.

Each test starts from an empty cache of one backend loaded for this module (a small context and a
small batch, so a prompt spans several batches). The last test checks the door is the only one:
no other module of app/ touches llama-cpp-python's private attributes or imports llama_cpp outside
app.core.llm.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from app.core.llm.backend import LlamaBackend, supports_gpu_offload
from app.core.llm.engine import SamplingParams

N_CTX = 512
N_BATCH = 32
TEXT = "def add(a, b):\n    return a + b\n\nThe function above adds two numbers, and it is"
APP = Path(__file__).resolve().parents[1] / "app"


@pytest.fixture(scope="module")
def loaded(starter_path: Path) -> Iterator[LlamaBackend]:
    backend = LlamaBackend.load(
        str(starter_path),
        n_ctx=N_CTX,
        n_gpu_layers=0,
        n_threads=2,
        n_threads_batch=2,
        n_batch=N_BATCH,
    )
    yield backend
    backend.close()


@pytest.fixture
def backend(loaded: LlamaBackend) -> LlamaBackend:
    loaded.clear()
    return loaded


def prompt_tokens(backend: LlamaBackend) -> list[int]:
    tokens = backend.tokenize(TEXT * 3)
    assert len(tokens) > 2 * N_BATCH  # evaluated in several batches
    return tokens


def logits_copy(backend: LlamaBackend) -> npt.NDArray[np.float32]:
    logits = backend.logits(-1)
    assert logits is not None
    return logits.copy()


def test_sizes_vocabulary_and_metadata(backend: LlamaBackend) -> None:
    assert backend.n_ctx() == N_CTX
    assert backend.n_vocab() == 49152  # SmolLM2's vocabulary
    assert backend.n_params() > 100_000_000
    assert (backend.n_threads(), backend.n_threads_batch()) == (2, 2)
    assert backend.metadata()["general.architecture"] == "llama"
    assert isinstance(supports_gpu_offload(), bool)
    eos = backend.token_eos()
    assert backend.token_text(eos) == "<|im_end|>"
    assert backend.is_eog(eos)
    assert not any(backend.is_eog(t) for t in backend.tokenize("hello world"))
    assert isinstance(backend.add_bos_token(), bool)


def test_tokenize_and_detokenize_round_trip(backend: LlamaBackend) -> None:
    text = "<|im_start|>user\nnaïve café — 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 tabs\tand\nnewlines<|im_end|>"
    tokens = backend.tokenize(text)
    assert tokens[0] == backend.tokenize("<|im_start|>")[0]  # special tokens are parsed
    assert backend.detokenize(tokens).decode("utf-8") == text
    assert b"".join(backend.pieces(t) for t in tokens) == text.encode("utf-8")
    assert len(backend.tokenize(text, special=False)) > len(tokens)  # markers spelled out
    # add_bos adds what the model asks for (SmolLM2: nothing; its template writes the BOS text)
    bos = [backend.token_bos()] if backend.add_bos_token() else []
    assert backend.tokenize("hi", add_bos=True) == bos + backend.tokenize("hi")
    assert backend.detokenize(backend.tokenize(text), special=False).decode() == text.replace(
        "<|im_start|>", ""
    ).replace("<|im_end|>", "")


def test_evaluate_in_batches_matches_one_token_at_a_time_continuation(
    backend: LlamaBackend,
) -> None:
    tokens = prompt_tokens(backend)
    backend.evaluate(tokens)
    assert backend.n_tokens == len(tokens)
    assert backend.token_ids().tolist() == tokens
    assert (backend.pos_min(0), backend.pos_max(0)) == (0, len(tokens) - 1)
    whole = logits_copy(backend)
    assert whole.shape == (backend.n_vocab(),) and np.isfinite(whole).all()
    assert backend.top_token() == int(np.argmax(whole))

    backend.clear()
    assert backend.n_tokens == 0 and backend.pos_max(0) == -1
    backend.evaluate(tokens[:-3])
    for token in tokens[-3:]:
        backend.evaluate([token])
    # One-token decodes take other (quantized) kernels than batches: close, not bit-equal.
    stepped = logits_copy(backend)
    assert int(np.argmax(stepped)) == int(np.argmax(whole))
    assert kl_divergence(whole, stepped) < 0.05


def kl_divergence(p_logits: npt.NDArray[np.float32], q_logits: npt.NDArray[np.float32]) -> float:
    p = p_logits.astype(np.float64) - p_logits.max()
    q = q_logits.astype(np.float64) - q_logits.max()
    log_p = p - np.log(np.exp(p).sum())
    log_q = q - np.log(np.exp(q).sum())
    return float(np.sum(np.exp(log_p) * (log_p - log_q)))


def test_greedy_seeded_and_biased_sampling(backend: LlamaBackend) -> None:
    tokens = prompt_tokens(backend)
    backend.evaluate(tokens)
    top = backend.top_token()
    greedy = backend.sampler(SamplingParams(temperature=0.0), seed=1)
    assert backend.sample(greedy) == top
    banned = backend.sampler(SamplingParams(temperature=0.0), seed=1, logit_bias={top: -1e9})
    assert backend.sample(banned) != top

    def run(seed: int) -> list[int]:
        assert backend.truncate(len(tokens) - 1)
        backend.evaluate(tokens[-1:])
        sampler = backend.sampler(SamplingParams(temperature=1.0, top_k=0, top_p=1.0), seed)
        out: list[int] = []
        for _ in range(8):
            out.append(backend.sample(sampler))
            backend.evaluate(out[-1:])
        return out

    first = run(7)
    assert run(7) == first  # the chain's own RNG: same seed, same tokens
    assert any(run(seed) != first for seed in (8, 9, 10))


def test_kv_span_removal_and_shift(backend: LlamaBackend) -> None:
    tokens = prompt_tokens(backend)[:48]
    backend.evaluate(tokens)
    assert backend.can_shift()
    assert backend.truncate(40)
    assert backend.n_tokens == 40 and backend.pos_max(0) == 39
    # Cut [10, 20) out and move [20, 40) down: what the KV fast mode does with spent thinking.
    assert backend.seq_rm(0, 10, 20)
    backend.seq_add(0, 20, 40, -10)
    backend.move_tokens(20, 40, 10)
    assert backend.n_tokens == 30
    assert backend.token_ids().tolist() == tokens[:10] + tokens[20:40]
    assert (backend.pos_min(0), backend.pos_max(0)) == (0, 29)
    backend.evaluate(tokens[40:41])  # decoding goes on at position 30
    assert backend.pos_max(0) == 30 and np.isfinite(logits_copy(backend)).all()
    backend.seq_cp(0, 0, 0, -1)  # a sequence onto itself: nothing changes
    assert backend.pos_max(0) == 30


def test_sequence_ids_are_checked_before_llama_cpp_sees_them(backend: LlamaBackend) -> None:
    """llama.cpp aborts the process on a sequence it does not have; the door refuses first."""
    backend.evaluate(backend.tokenize("one two three"))
    with pytest.raises(ValueError, match="sequence 1 does not exist"):
        backend.seq_cp(0, 1, 0, -1)
    for call in (
        lambda: backend.seq_rm(5, 0, -1),
        lambda: backend.seq_add(-1, 0, 2, 1),
        lambda: backend.pos_max(2),
        lambda: backend.pos_min(-2),
    ):
        with pytest.raises(ValueError, match="does not exist"):
            call()
    assert backend.seq_rm(-1, 2, -1)  # -1: every sequence, as llama.cpp means it
    assert backend.pos_max(0) == 1


def test_checkpoint_and_rewind_leave_no_trace(backend: LlamaBackend) -> None:
    tokens = prompt_tokens(backend)
    backend.evaluate(tokens)
    nxt = backend.top_token()
    backend.evaluate([nxt])
    reference = logits_copy(backend)  # the next step with no trial at all

    backend.clear()
    backend.evaluate(tokens)
    before = logits_copy(backend)
    mark = backend.checkpoint(room=20)
    assert mark is not None and mark.position == len(tokens)
    backend.evaluate(backend.tokenize(" and then something else entirely"))
    assert backend.n_tokens > len(tokens)
    backend.rewind(mark)
    assert backend.n_tokens == len(tokens) and backend.token_ids().tolist() == tokens
    assert backend.pos_max(0) == len(tokens) - 1
    assert np.array_equal(logits_copy(backend), before)  # what a sample now would see
    backend.evaluate([nxt])
    np.testing.assert_allclose(logits_copy(backend), reference, rtol=0, atol=1e-4)


def test_state_round_trip(backend: LlamaBackend, starter_path: Path) -> None:
    tokens = prompt_tokens(backend)
    backend.evaluate(tokens)
    before = logits_copy(backend)
    saved = backend.save_state()
    assert saved.n_tokens == len(tokens) and saved.size_bytes > 0
    nxt = backend.top_token()
    backend.evaluate([nxt])
    expected = logits_copy(backend)

    backend.clear()
    backend.evaluate(backend.tokenize("Something unrelated fills the cache now."))
    backend.load_state(saved)
    assert backend.n_tokens == len(tokens) and backend.token_ids().tolist() == tokens
    assert backend.pos_max(0) == len(tokens) - 1
    assert np.array_equal(logits_copy(backend), before)  # a sample now sees what it saw then
    assert backend.top_token() == nxt
    backend.evaluate([nxt])
    np.testing.assert_allclose(logits_copy(backend), expected, rtol=0, atol=1e-4)

    other = LlamaBackend.load(
        str(starter_path), n_ctx=256, n_gpu_layers=0, n_threads=2, n_threads_batch=2, n_batch=32
    )
    try:
        with pytest.raises(ValueError, match="at a context of 512"):
            other.load_state(saved)
        assert other.n_tokens == 0
    finally:
        other.close()


PRIVATE = re.compile(r"\._ctx\b|\._model\b|\._sampler\b|\._seed\b|\._batch\b|\._logits_all\b")


def test_only_the_backend_touches_llama_cpp_internals() -> None:
    touching = sorted(
        str(path.relative_to(APP))
        for path in APP.rglob("*.py")
        if PRIVATE.search(path.read_text(encoding="utf-8"))
    )
    assert touching == ["core/llm/backend.py", "core/llm/backend_memory.py"]  # its KV half
    importing = sorted(
        str(path.relative_to(APP))
        for path in APP.rglob("*.py")
        if re.search(r"^\s*(import|from) llama_cpp\b", path.read_text(encoding="utf-8"), re.M)
    )
    assert importing and all(p.startswith("core/llm/") for p in importing), importing
    assert "core/thinking/early_exit.py" not in importing
