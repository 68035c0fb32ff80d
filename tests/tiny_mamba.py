"""Write a tiny random-weight Mamba GGUF with `gguf`: a model whose cache cannot shift positions.

A recurrent model keeps a running state instead of a KV cache of positions, so llama.cpp reports
`llama_memory_can_shift` false for it; fast mode must notice and fall back to exact mode. It borrows
the starter model's tokenizer (as tests/tiny_moe.py does) so llama.cpp can tokenize and generate.
The weights are random, so the text is gibberish. Used by tests/test_kv_fast_mode.py.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from tests.tiny_moe import _copy_tokenizer

N_LAYER = 2
N_EMBD = 64
D_INNER = 128
D_STATE = 16
D_CONV = 4
DT_RANK = 8


def write_tiny_mamba(path: Path, tokenizer_source: Path) -> Path:
    """Write the model to `path` and return it. Deterministic (fixed seed)."""
    reader = gguf.GGUFReader(tokenizer_source)
    n_vocab = len(reader.fields["tokenizer.ggml.tokens"].data)
    writer = gguf.GGUFWriter(path, "mamba")
    writer.add_name("tiny-random-mamba")
    writer.add_block_count(N_LAYER)
    writer.add_context_length(4096)
    writer.add_embedding_length(N_EMBD)
    writer.add_feed_forward_length(0)
    writer.add_head_count(0)
    writer.add_ssm_conv_kernel(D_CONV)
    writer.add_ssm_inner_size(D_INNER)
    writer.add_ssm_state_size(D_STATE)
    writer.add_ssm_time_step_rank(DT_RANK)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    _copy_tokenizer(reader, writer)

    rng = np.random.default_rng(4321)

    def weights(*numpy_shape: int) -> np.ndarray:
        return (rng.standard_normal(numpy_shape) * 0.05).astype(np.float32)

    # numpy shapes are ggml's `ne` reversed
    writer.add_tensor("token_embd.weight", weights(n_vocab, N_EMBD))
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    for i in range(N_LAYER):
        blk = f"blk.{i}"
        writer.add_tensor(f"{blk}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        writer.add_tensor(f"{blk}.ssm_in.weight", weights(2 * D_INNER, N_EMBD))
        writer.add_tensor(f"{blk}.ssm_conv1d.weight", weights(D_INNER, D_CONV))
        writer.add_tensor(f"{blk}.ssm_conv1d.bias", weights(D_INNER))
        writer.add_tensor(f"{blk}.ssm_x.weight", weights(DT_RANK + 2 * D_STATE, D_INNER))
        writer.add_tensor(f"{blk}.ssm_dt.weight", weights(D_INNER, DT_RANK))
        writer.add_tensor(f"{blk}.ssm_dt.bias", weights(D_INNER))
        # A = -exp(A_log): negative, so the state decays instead of blowing up.
        writer.add_tensor(f"{blk}.ssm_a", -np.ones((D_INNER, D_STATE), dtype=np.float32))
        writer.add_tensor(f"{blk}.ssm_d", np.ones(D_INNER, dtype=np.float32))
        writer.add_tensor(f"{blk}.ssm_out.weight", weights(N_EMBD, D_INNER))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
