"""Write a tiny random-weight Mixture-of-Experts GGUF (Qwen3-MoE architecture) with `gguf`.

It borrows the starter model's tokenizer (and chat template) so llama.cpp can tokenize and generate
with it. The weights are random: the text is gibberish, but every MoE code path in llama.cpp runs
(router, expert tensors, expert buffer-type overrides), which is what the tests and the fit
benchmark need. Used by tests/test_fit.py, tests/test_moe_engine.py and bench/fit_accuracy.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np


@dataclass(frozen=True)
class TinyMoeShape:
    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 4
    n_head_kv: int = 2
    head_dim: int = 16
    n_expert: int = 8
    n_expert_used: int = 2
    expert_ff: int = 128
    context_length: int = 4096


def write_tiny_moe(path: Path, tokenizer_source: Path, shape: TinyMoeShape | None = None) -> Path:
    """Write the model to `path` and return it. Deterministic (fixed seed)."""
    s = shape or TinyMoeShape()
    arch = "qwen3moe"
    reader = gguf.GGUFReader(tokenizer_source)
    n_vocab = len(reader.fields["tokenizer.ggml.tokens"].data)
    writer = gguf.GGUFWriter(path, arch)
    writer.add_name("tiny-random-qwen3moe")
    writer.add_block_count(s.n_layer)
    writer.add_context_length(s.context_length)
    writer.add_embedding_length(s.n_embd)
    writer.add_feed_forward_length(s.expert_ff)
    writer.add_head_count(s.n_head)
    writer.add_head_count_kv(s.n_head_kv)
    writer.add_key_length(s.head_dim)
    writer.add_value_length(s.head_dim)
    writer.add_rope_freq_base(1_000_000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_expert_count(s.n_expert)
    writer.add_expert_used_count(s.n_expert_used)
    writer.add_expert_feed_forward_length(s.expert_ff)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    _copy_tokenizer(reader, writer)

    rng = np.random.default_rng(1234)

    def weights(*numpy_shape: int) -> np.ndarray:
        return (rng.standard_normal(numpy_shape) * 0.05).astype(np.float32)

    def norm(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    q_dim = s.n_head * s.head_dim
    kv_dim = s.n_head_kv * s.head_dim
    # numpy shapes are ggml's `ne` reversed
    writer.add_tensor("token_embd.weight", weights(n_vocab, s.n_embd))
    writer.add_tensor("output_norm.weight", norm(s.n_embd))
    for i in range(s.n_layer):
        blk = f"blk.{i}"
        writer.add_tensor(f"{blk}.attn_norm.weight", norm(s.n_embd))
        writer.add_tensor(f"{blk}.attn_q.weight", weights(q_dim, s.n_embd))
        writer.add_tensor(f"{blk}.attn_k.weight", weights(kv_dim, s.n_embd))
        writer.add_tensor(f"{blk}.attn_v.weight", weights(kv_dim, s.n_embd))
        writer.add_tensor(f"{blk}.attn_output.weight", weights(s.n_embd, q_dim))
        writer.add_tensor(f"{blk}.attn_q_norm.weight", norm(s.head_dim))
        writer.add_tensor(f"{blk}.attn_k_norm.weight", norm(s.head_dim))
        writer.add_tensor(f"{blk}.ffn_norm.weight", norm(s.n_embd))
        writer.add_tensor(f"{blk}.ffn_gate_inp.weight", weights(s.n_expert, s.n_embd))
        writer.add_tensor(f"{blk}.ffn_gate_exps.weight", weights(s.n_expert, s.expert_ff, s.n_embd))
        writer.add_tensor(f"{blk}.ffn_up_exps.weight", weights(s.n_expert, s.expert_ff, s.n_embd))
        writer.add_tensor(f"{blk}.ffn_down_exps.weight", weights(s.n_expert, s.n_embd, s.expert_ff))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _copy_tokenizer(reader: gguf.GGUFReader, writer: gguf.GGUFWriter) -> None:
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        main_type = field.types[0]
        if main_type == gguf.GGUFValueType.ARRAY:
            sub_type = field.types[-1]
            values = [field.contents(i) for i in range(len(field.data))]
            writer.add_key_value(key, values, main_type, sub_type)
        else:
            writer.add_key_value(key, field.contents(), main_type)
