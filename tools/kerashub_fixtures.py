#!/usr/bin/env python3
"""Conformance fixtures from the real attention layers of KerasHub, and a checker.

The layers: `LlamaAttention`, `CachedMistralAttention`, `Qwen3Attention`, `GptOssAttention`,
`CachedGemmaAttention` and `CachedGemma3Attention` of keras-hub 0.32.0 (Keras 3.15.1); see
KERASHUB.md (the project's map of what each computes and its traps). Needs the packages of
tools/requirements.txt (keras-hub imports TensorFlow, the numbers come from the numpy and JAX backends).

Generate (deterministic, seeded; about a minute):

    python tools/kerashub_fixtures.py --out tests/fixtures/kerashub

Check (exit 0: all match, 1: a mismatch, 2: bad input):

    python tools/kerashub_fixtures.py --check tests/fixtures/kerashub [--no-jax]

File format: one `<case>.safetensors` per layer call (chains of cached calls give one file per call).

Tensors
  - every weight of the layer under its Keras variable path `w.path` (`<layer name>/query/kernel`,
    `.../query_dense_layernorm/scale`, `.../query_norm/scale`, `.../sinks`, ...), f32, in the layer's
    own shape (the Gemma family's kernels are (N, D, H));
  - the call's inputs under the names of the call's arguments: `hidden_states` (Llama, Mistral, Qwen3,
    GPT-OSS) or `x` (Gemma, Gemma3), f32 (B, T, D); `attention_mask` (B, T, S), bool or int32 as the
    decoder blocks build it (KerasHub's own mask code: bool when no padding is merged, int32 when a
    padding mask, a decoder_attention_mask or Mistral's band is merged); for cached calls `cache` f32
    (B, 2, S, Nkv, H), or for Gemma3 its tuple cache as `cache.0` (keys) and `cache.1` (values), each
    (B, S, Nkv, H); `cache_update_mask` bool (B, T) where the call takes one (Gemma3 generate steps);
  - the numpy backend's results (the non-fused path): `expected.output` (B, T, D) and, for cached
    calls, `expected.cache` (`expected.cache.0`, `expected.cache.1` for Gemma3);
  - for the Llama, Mistral and Qwen3 cases without a layer sliding window (Mistral's window lives in
    the decoder's mask only, so all Mistral cases), the JAX backend's results from the same weights
    and inputs (its fused `dot_product_attention` path, where a fully masked query row gets the
    uniform average over all S value slots): `jax.output`, and `jax.cache` for cached calls.

Metadata (all strings)
  - `class_name`: the layer's class;
  - `config`: JSON of the layer's `get_config()` where it works and round-trips through `from_config`;
    for `LlamaAttention` (whose get_config raises) and `Qwen3Attention` (whose get_config drops
    head_dim and layer_norm_epsilon) the `keras.layers.Layer` base config (name, trainable, dtype) plus
    every constructor argument (all of them are passed explicitly);
  - `config_source`: `get_config()` or `base config + constructor arguments`;
  - `call`: JSON of the call's scalar arguments: `{}` uncached, `{"cache_update_index": k}` cached;
  - `hidden_dim`: D; `description`: what the case exercises;
  - `chain`, `chain_step`: for calls of a cached chain, the chain's name and the call's number
    (0, 1, ...); each call's input cache is the previous call's returned `expected.cache`;
  - `keras_version`, `keras_hub_version`, `keras_backend` (`numpy`).

Values (seed: crc32 of the case name): kernels N(0, 0.3^2), biases N(0, 0.1^2), QK-norm scales
N(0, 1.5^2) (Qwen3 multiplies by `scale`, Gemma3 by `1 + scale`; large enough that attention is not
uniform after the norm), sinks N(0, 1); inputs N(0, s^2) with s = gain * 1.6 / (0.3 sqrt(D)), so that
scores are of order 1-5 (larger where a soft cap must bite). A chain starts from a zero cache, as
KerasHub's `_build_cache` does; a lone cached call starts from a cache whose first slots hold random
earlier keys and values and whose other slots are zero. The JAX results come from a subprocess
(`--jax-worker`, KERAS_BACKEND=jax) fed the same weights and inputs through temporary files.

The check mode rebuilds each layer from (`class_name`, `config`), the broken-config classes from the
recorded constructor arguments, loads the weights by path, reruns the call on the stored inputs with
the `call` arguments (numpy backend; the `jax.*` tensors in a JAX-backend subprocess) and compares
with the file: |keras - file| <= 1e-5 + 1e-4 |file|.

Keras files: six uncached cases (KERAS_FILE_CASES, one per class) also come as Keras files, for
loaders without Python. The model: a functional `keras.Model` named `<case>_model` with two inputs,
`hidden_states` (or `x`) (None, None, D) float32 and `attention_mask` (None, None) of the fixture's
mask dtype (bool or int32), whose output is the layer's call `layer(x, attention_mask=mask)`; the
layer is built from the fixture's config (same name, same weights by path). Files:
  - `<case>.keras`: `model.save`, rewritten as tools/keras_fixtures.py does (stored zip entries dated
    1980-01-01, `date_saved` 1980-01-01@00:00:00 in metadata.json, `shared_object_id`s renumbered);
    not for LlamaAttention (its `model.save` raises: get_config reads a missing `rope_scaling_factor`)
    nor Qwen3Attention (it saves, but `load_model` raises: the config lacks the required `head_dim`);
    the generator prints the reason and asserts that it still fails;
  - `<case>.weights.h5`: `model.save_weights` (the same groups, datasets and attributes as the
    .keras's model.weights.h5, though not the same bytes);
  - `<case>.layer.json`: the fixture's metadata `config`, byte for byte (no trailing newline).
Keras' auto-generated sublayer names (`dropout`, `rotary_embedding`, ... stored as HDF5 attributes)
count from a fresh `keras.utils.clear_session()` per file. The check mode loads each `.keras` with
`keras.saving.load_model` (and compares the layer's get_config with the fixture's config), each
`.weights.h5` into a model rebuilt from its `.layer.json` with `load_weights`, requires every weight
to equal the fixture's and reruns the model on the fixture's inputs against `expected.output`.

The header's metadata is written in sorted order: `safetensors.numpy.save` orders it by a randomly
seeded hash map, which would make the files differ from run to run; the tensors and their layout are
the package's own.
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from types import SimpleNamespace

# Fixed before numpy / jax are imported: one thread everywhere (reproducible sums), quiet TensorFlow.
os.environ.setdefault("KERAS_BACKEND", "numpy")
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

# The reproducible .keras rewrite of the GroupQueryAttention fixtures' tool, beside this file.
from keras_fixtures import normalize_keras_zip  # noqa: E402

ATOL = 1e-5
RTOL = 1e-4
INPUT_X = {"LlamaAttention": "hidden_states", "CachedMistralAttention": "hidden_states",
           "Qwen3Attention": "hidden_states", "GptOssAttention": "hidden_states",
           "CachedGemmaAttention": "x", "CachedGemma3Attention": "x"}
# Classes whose get_config() is unusable: the file's config is the base config + constructor arguments.
BASE_CONFIG_CLASSES = ("LlamaAttention", "Qwen3Attention")
CONFIG_SOURCE = {True: "base config + constructor arguments", False: "get_config()"}
# Every constructor argument of the broken-config classes with its default (all are passed explicitly).
CTOR_DEFAULTS = {
    "LlamaAttention": dict(rope_max_wavelength=10000, rope_position_scaling_factor=1.0,
                           rope_frequency_adjustment_factor=None, rope_low_freq_factor=None,
                           rope_high_freq_factor=None, rope_pretraining_sequence_length=None,
                           kernel_initializer="glorot_uniform", dropout=0),
    "Qwen3Attention": dict(head_dim=None, rope_max_wavelength=10000, rope_scaling_factor=1,
                           kernel_initializer="glorot_uniform", dropout=0.0, layer_norm_epsilon=1e-5,
                           sliding_window_size=None),
}
KERNEL_STD = 0.3  # kernels N(0, 0.3^2)
BIAS_STD = 0.1
NORM_SCALE_STD = 1.5  # QK-norm scales: large enough that attention is not uniform after the norm
SINK_STD = 1.0
# Uncached cases also written as Keras files: `<case>.keras` (not for BASE_CONFIG_CLASSES: see the
# docstring), `<case>.weights.h5` and `<case>.layer.json`.
KERAS_FILE_CASES = ("llama_causal", "mistral_window", "qwen3_window", "gptoss_window", "gemma_soft_cap",
                    "gemma3_all")
KERAS_EXTS = (".keras", ".weights.h5", ".layer.json")


def layer_classes():
    from keras_hub.src.models.gemma.gemma_attention import CachedGemmaAttention
    from keras_hub.src.models.gemma3.gemma3_attention import CachedGemma3Attention
    from keras_hub.src.models.gpt_oss.gpt_oss_attention import GptOssAttention
    from keras_hub.src.models.llama.llama_attention import LlamaAttention
    from keras_hub.src.models.mistral.mistral_attention import CachedMistralAttention
    from keras_hub.src.models.qwen3.qwen3_attention import Qwen3Attention
    return {c.__name__: c for c in (LlamaAttention, CachedMistralAttention, Qwen3Attention, GptOssAttention,
                                     CachedGemmaAttention, CachedGemma3Attention)}


# ------------------------------------------------------------------------------------------ masks


def decoder_mask(class_name, x, cache=None, idx=None, padding_mask=None, attention_mask=None,
                 window=None, bidirectional=False):
    """The attention mask the layer's decoder block builds: KerasHub's own mask method of that block,
    called with a stand-in `self` holding the one attribute it reads."""
    from keras_hub.src.models.gemma.gemma_decoder_block import GemmaDecoderBlock
    from keras_hub.src.models.gemma3.gemma3_decoder_block import Gemma3DecoderBlock
    from keras_hub.src.models.gpt_oss.gpt_oss_decoder import GptOssTransformerDecoder
    from keras_hub.src.models.llama.llama_decoder import LlamaTransformerDecoder
    from keras_hub.src.models.mistral.mistral_transformer_decoder import MistralTransformerDecoder
    from keras_hub.src.models.qwen3.qwen3_decoder import Qwen3TransformerDecoder
    llama_style = {"LlamaAttention": (LlamaTransformerDecoder, SimpleNamespace()),
                   "CachedMistralAttention": (MistralTransformerDecoder, SimpleNamespace(sliding_window=window)),
                   "Qwen3Attention": (Qwen3TransformerDecoder, SimpleNamespace()),
                   "GptOssAttention": (GptOssTransformerDecoder, SimpleNamespace())}
    if class_name in llama_style:
        block, me = llama_style[class_name]
        m = block._compute_self_attention_mask(me, x, padding_mask, attention_mask, cache, idx)
    elif class_name == "CachedGemmaAttention":
        assert attention_mask is None
        m = GemmaDecoderBlock._compute_attention_mask(SimpleNamespace(), x, padding_mask, cache,
                                                      0 if idx is None else idx)
    else:
        assert attention_mask is None
        me = SimpleNamespace(use_bidirectional_attention=bidirectional)
        m = Gemma3DecoderBlock._compute_attention_mask(me, x, padding_mask, None, cache,
                                                       0 if idx is None else idx)
    return np.asarray(m)


def left_pad(b, n, pads):
    """A (B, n) bool padding mask, False on the first pads[b] positions of row b."""
    m = np.ones((b, n), dtype=bool)
    for i, p in enumerate(pads):
        m[i, :p] = False
    return m


def right_pad(b, n, lengths):
    """A (B, n) bool padding mask, True on the first lengths[b] positions of row b."""
    m = np.zeros((b, n), dtype=bool)
    for i, k in enumerate(lengths):
        m[i, :k] = True
    return m


# ------------------------------------------------------------------------------------------ cases


def call(t, idx=None, s=None, padding=None, attn=None, window=None, bidirectional=False, cum=None,
         cache_fill=None, description=""):
    """One layer call. idx None: uncached (S = T); else cached at cache_update_index idx into a cache
    of capacity s. padding(b, n) / attn(b, t, s): the decoder's padding mask / decoder_attention_mask.
    window: the Mistral decoder's sliding_window; bidirectional: Gemma3's decoder flag. cum: a (B,)
    bool list, the Gemma3 cache_update_mask of a T=1 step. cache_fill: for a cached call that does not
    continue a chain, the number of leading cache slots holding earlier (random) keys and values."""
    return dict(t=t, idx=idx, s=s, padding=padding, attn=attn, window=window, bidirectional=bidirectional,
                cum=cum, cache_fill=cache_fill, description=description)


def case(name, cls, ctor, d, b, calls, x_gain=1.0, jax=False, description=None):
    """A layer and its calls; several calls make a cached chain (one file per call)."""
    return dict(name=name, cls=cls, ctor=ctor, d=d, b=b, calls=calls, x_gain=x_gain, jax=jax,
                description=description)


def llama3(f, low, high, length):
    return dict(rope_frequency_adjustment_factor=f, rope_low_freq_factor=low, rope_high_freq_factor=high,
                rope_pretraining_sequence_length=length)


L, M, Q, G, GM, G3 = ("LlamaAttention", "CachedMistralAttention", "Qwen3Attention", "GptOssAttention",
                      "CachedGemmaAttention", "CachedGemma3Attention")


def chain_calls(steps, s, **kw):
    """A prefill at 0 followed by calls at consecutive positions: steps lists (T, description)."""
    out, idx = [], 0
    for t, desc in steps:
        out.append(call(t, idx=idx, s=s, description=desc, **kw))
        idx += t
    return out


CASES = [
    # ---------------------------------------------------------------- Llama
    case("llama_causal", L, dict(num_query_heads=4, num_key_value_heads=2), 24, 2,
         [call(6, description="LlamaAttention uncached, GQA Nq=4 Nkv=2 H=6, the decoder's causal bool mask")],
         jax=True),
    case("llama_left_pad", L, dict(num_query_heads=4, num_key_value_heads=4), 16, 2,
         [call(7, padding=lambda b, n: left_pad(b, n, [0, 3]),
               description="LlamaAttention uncached MHA (Nq=Nkv=4), left padding (3 slots, batch 1) merged "
                           "into an int32 mask: fully masked query rows (0 on numpy, uniform average on JAX)")],
         jax=True),
    case("llama3_rope", L, dict(num_query_heads=4, num_key_value_heads=2, rope_max_wavelength=500000,
                                rope_position_scaling_factor=2.0, **llama3(8.0, 1.0, 4.0, 256)), 32, 1,
         [call(10, description="LlamaAttention Llama-3 RoPE (factor 8, low 1, high 4, L=256, wavelength "
                               "500000, H=8: high, medium and low frequency bands all occur) and "
                               "rope_position_scaling_factor=2 (which has no effect)")],
         jax=True),
    case("llama_h_floor_mqa", L, dict(num_query_heads=3, num_key_value_heads=1, rope_max_wavelength=1000), 20, 2,
         [call(5, description="LlamaAttention MQA with D=20 not divisible by Nq=3: H = 20 // 3 = 6, "
                              "rope_max_wavelength=1000")],
         jax=True),
    case("llama_chain", L, dict(num_query_heads=4, num_key_value_heads=2), 16, 2,
         chain_calls([(5, "LlamaAttention cached chain: prefill T=5 into an empty cache of S=12 at index 0"),
                      (1, "LlamaAttention cached chain: one-token step at index 5"),
                      (1, "LlamaAttention cached chain: one-token step at index 6"),
                      (3, "LlamaAttention cached chain: a 3-token chunk at index 7")], 12),
         jax=True),
    case("llama_cached_left_pad", L, dict(num_query_heads=4, num_key_value_heads=2), 16, 2,
         [call(4, idx=3, s=9, cache_fill=3, attn=lambda b, t, s: np.broadcast_to(left_pad(b, s, [0, 5])[:, None, :],
                                                                                  (b, t, s)),
               description="LlamaAttention cached call at index 3 (T=4, S=9, slots 0..2 hold earlier keys) "
                           "with a (B,T,S) decoder_attention_mask left-padding batch 1 by 5 slots: int32 "
                           "mask, query rows at positions 3 and 4 of batch 1 fully masked")],
         jax=True),
    # ---------------------------------------------------------------- Mistral
    case("mistral_window", M, dict(num_query_heads=4, num_key_value_heads=2, sliding_window=3), 16, 2,
         [call(8, window=3, description="CachedMistralAttention uncached with the decoder's sliding-window "
                                        "band (W=3 < T=8, int32 mask)")],
         jax=True),
    case("mistral_head_dim", M, dict(num_query_heads=4, num_key_value_heads=1, head_dim=6, sliding_window=None),
         16, 2,
         [call(6, padding=lambda b, n: right_pad(b, n, [6, 4]),
               description="CachedMistralAttention MQA with head_dim=6 given (D//Nq = 4), no window, right "
                           "padding merged (int32 mask)")],
         jax=True),
    case("mistral_rope_scaling", M, dict(num_query_heads=2, num_key_value_heads=2, rope_scaling_factor=4.0,
                                         rope_max_wavelength=1000, sliding_window=5), 20, 1,
         [call(9, window=5, description="CachedMistralAttention MHA, rope_scaling_factor=4 (linear), "
                                        "rope_max_wavelength=1000, decoder band W=5 < T=9")],
         jax=True),
    case("mistral_chain", M, dict(num_query_heads=4, num_key_value_heads=2, sliding_window=4), 16, 2,
         chain_calls([(4, "CachedMistralAttention cached chain with the decoder's band W=4: prefill T=4, S=10"),
                      (1, "CachedMistralAttention cached chain: step at index 4 (band hides slot 0)"),
                      (1, "CachedMistralAttention cached chain: step at index 5 (band hides slots 0..1)"),
                      (3, "CachedMistralAttention cached chain: 3-token chunk at index 6")], 10, window=4),
         jax=True),
    # ---------------------------------------------------------------- Qwen3
    case("qwen3_window", Q, dict(num_query_heads=4, num_key_value_heads=2, head_dim=4, sliding_window_size=3,
                                 layer_norm_epsilon=0.05), 16, 2,
         [call(7, description="Qwen3Attention uncached with QK-norm (eps 0.05, small activations so that "
                              "eps matters) and the layer's sliding_window_size=3 < T=7 (non-fused path only)")],
         x_gain=0.3),
    case("qwen3_no_window", Q, dict(num_query_heads=4, num_key_value_heads=2, head_dim=8), 24, 2,
         [call(6, padding=lambda b, n: left_pad(b, n, [2, 0]),
               description="Qwen3Attention uncached, no window, head_dim=8 != D//Nq=6, left padding "
                           "(int32, fully masked rows)")],
         jax=True),
    case("qwen3_rope_scaling", Q, dict(num_query_heads=2, num_key_value_heads=1, head_dim=None,
                                       rope_scaling_factor=2.5, rope_max_wavelength=1000000), 20, 1,
         [call(8, description="Qwen3Attention head_dim=None (H = 20 // 2 = 10), rope_scaling_factor=2.5, "
                              "rope_max_wavelength=1e6, MQA, no window")],
         jax=True),
    case("qwen3_chain", Q, dict(num_query_heads=4, num_key_value_heads=2, head_dim=4, sliding_window_size=3,
                                layer_norm_epsilon=1e-6), 16, 2,
         chain_calls([(4, "Qwen3Attention cached chain, sliding_window_size=3: prefill T=4 into S=9"),
                      (1, "Qwen3Attention cached chain: step at index 4 (window band sliced from index 4)"),
                      (3, "Qwen3Attention cached chain: 3-token chunk at index 5")], 9)),
    # ---------------------------------------------------------------- GPT-OSS
    case("gptoss_window", G, dict(num_query_heads=4, num_key_value_heads=2, head_dim=5, rope_scaling_factor=4.0,
                                  sliding_window=3), 16, 2,
         [call(7, description="GptOssAttention odd head_dim=5 (last feature unrotated), biases, sinks, YaRN "
                              "rope_scaling_factor=4, layer sliding_window=3 (keeps W+1 keys)")]),
    case("gptoss_no_window_pad", G, dict(num_query_heads=3, num_key_value_heads=1, sliding_window=None), 24, 2,
         [call(6, padding=lambda b, n: left_pad(b, n, [0, 2]),
               description="GptOssAttention sliding_window=None, MQA H=8, YaRN factor 1, left padding: fully "
                           "masked rows give output = attention_output bias")]),
    case("gptoss_window0", G, dict(num_query_heads=2, num_key_value_heads=1, head_dim=7, rope_scaling_factor=32.0,
                                   rope_max_wavelength=150000, sliding_window=0), 20, 1,
         [call(6, description="GptOssAttention sliding_window=0 (disabled), head_dim=7, YaRN factor 32 with "
                              "rope_max_wavelength=150000")]),
    case("gptoss_chain", G, dict(num_query_heads=4, num_key_value_heads=2, head_dim=5, rope_scaling_factor=4.0,
                                 sliding_window=2), 16, 2,
         chain_calls([(4, "GptOssAttention cached chain, sliding_window=2: prefill T=4 into S=10"),
                      (1, "GptOssAttention cached chain: step at index 4"),
                      (3, "GptOssAttention cached chain: 3-token chunk at index 5")], 10)),
    # ---------------------------------------------------------------- Gemma
    case("gemma_soft_cap", GM, dict(head_dim=8, num_query_heads=4, num_key_value_heads=2, logit_soft_cap=5.0),
         16, 2,
         [call(6, description="CachedGemmaAttention uncached, logit_soft_cap=5 with large scores, head_dim=8 "
                              "(Nq*H != D), interleaved RoPE")],
         x_gain=1.6),
    case("gemma_window_pad", GM, dict(head_dim=4, num_query_heads=2, num_key_value_heads=1,
                                      use_sliding_window_attention=True, sliding_window_size=3), 16, 2,
         [call(8, padding=lambda b, n: left_pad(b, n, [0, 3]),
               description="CachedGemmaAttention uncached MQA, sliding window W=3, left padding (int32): fully "
                           "masked rows wiped to 0")]),
    case("gemma_no_qhd_norm", GM, dict(head_dim=8, num_query_heads=3, num_key_value_heads=1,
                                       query_head_dim_normalize=False), 20, 2,
         [call(5, description="CachedGemmaAttention query_head_dim_normalize=False with D=20, Nq=3: scale "
                              "1/sqrt(20 // 3 = 6) instead of 1/sqrt(head_dim=8)")]),
    case("gemma_chain", GM, dict(head_dim=4, num_query_heads=4, num_key_value_heads=2, logit_soft_cap=5.0,
                                 use_sliding_window_attention=True, sliding_window_size=4), 16, 2,
         chain_calls([(4, "CachedGemmaAttention cached chain (interleaved RoPE layout in the cache), soft cap "
                          "5, window W=4: prefill T=4 into S=10"),
                      (1, "CachedGemmaAttention cached chain: step at index 4"),
                      (3, "CachedGemmaAttention cached chain: 3-token chunk at index 5")], 10),
         x_gain=1.4),
    # ---------------------------------------------------------------- Gemma3
    case("gemma3_all", G3, dict(head_dim=8, num_query_heads=4, num_key_value_heads=2, use_query_key_norm=True,
                                logit_soft_cap=4.0, use_sliding_window_attention=True, sliding_window_size=3,
                                rope_scaling_factor=8.0, rope_wavelength=1000000.0), 16, 2,
         [call(7, description="CachedGemma3Attention uncached: QK-norm (1+scale), soft cap 4, sliding window "
                              "W=3, rope_scaling_factor=8, rope_wavelength=1e6")]),
    case("gemma3_bidirectional", G3, dict(head_dim=4, num_query_heads=2, num_key_value_heads=1,
                                          use_sliding_window_attention=True, sliding_window_size=4,
                                          use_bidirectional_attention=True, layer_norm_epsilon=0.01,
                                          use_query_key_norm=True), 16, 2,
         [call(8, padding=lambda b, n: right_pad(b, n, [8, 5]), bidirectional=True,
               description="CachedGemma3Attention use_bidirectional_attention with window W=4 (keeps "
                           "-2 <= t-j <= 1), the decoder's padding x padding^T int32 mask (padded rows fully "
                           "masked), QK-norm eps 0.01")]),
    case("gemma3_generate", G3, dict(head_dim=4, num_query_heads=4, num_key_value_heads=2, use_query_key_norm=True,
                                     logit_soft_cap=6.0, use_sliding_window_attention=True, sliding_window_size=3,
                                     rope_scaling_factor=2.0), 16, 2,
         [call(8, idx=0, s=8, padding=lambda b, n: right_pad(b, n, [3, 5]),
               description="CachedGemma3Attention generate() prefill: right-padded prompts (lengths 3, 5), "
                           "T == S = 8, padding merged (int32), tuple cache"),
          call(1, idx=2, s=8, cum=[False, False],
               description="CachedGemma3Attention generate() step at index 2 = min(lengths) - 1: "
                           "cache_update_mask all False (a prompt slot in both rows), the cache is unchanged"),
          call(1, idx=3, s=8, cum=[True, False],
               description="CachedGemma3Attention generate() step at index 3: cache_update_mask [True, "
                           "False], batch 1 keeps its prompt key/value in slot 3"),
          call(1, idx=4, s=8, cum=[True, False],
               description="CachedGemma3Attention generate() step at index 4: cache_update_mask [True, "
                           "False], window W=3")]),
]


def seed_of(name):
    """A stable per-case seed (crc32 of the name)."""
    return zlib.crc32(name.encode())


# ------------------------------------------------------------------------------------------ layers


def build_by_call(layer, d):
    """Builds the layer by calling it once on zeros (B=1, T=2) with a causal bool mask."""
    x = np.zeros((1, 2, d), np.float32)
    mask = np.tril(np.ones((2, 2), dtype=bool))[None]
    layer(x, attention_mask=mask)


def constructor_args(c):
    """The constructor arguments the generator passes (all of them for the broken-config classes)."""
    import inspect
    kw = dict(CTOR_DEFAULTS.get(c["cls"], {}))
    kw.update(c["ctor"])
    order = list(inspect.signature(layer_classes()[c["cls"]].__init__).parameters)
    kw = {k: kw[k] for k in sorted(kw, key=order.index)}  # in the constructor's order
    kw["name"] = c["name"]
    return kw


def layer_config(layer, class_name, ctor):
    """(config, config_source) of a built layer."""
    import keras
    if class_name in BASE_CONFIG_CLASSES:
        cfg = keras.layers.Layer.get_config(layer)
        cfg.update({k: v for k, v in ctor.items() if k != "name"})
        return cfg, CONFIG_SOURCE[True]
    return layer.get_config(), CONFIG_SOURCE[False]


def layer_from_config(class_name, cfg, source):
    """The layer, unbuilt, from a file's class_name and config."""
    import keras
    cls = layer_classes()[class_name]
    if source == CONFIG_SOURCE[True]:
        kw = dict(cfg)
        kw["dtype"] = keras.dtype_policies.deserialize(kw["dtype"]) if isinstance(kw.get("dtype"), dict) \
            else kw.get("dtype")
        return cls(**kw)
    if source != CONFIG_SOURCE[False]:
        raise BadInput(f"unknown config_source {source!r}")
    return cls.from_config(cfg)


def fill_weights(layer, rng):
    """Seeded non-zero weights by the variable's role."""
    for w in layer.weights:
        shape, leaf = tuple(w.shape), w.path.rsplit("/", 1)[-1]
        std = {"kernel": KERNEL_STD, "bias": BIAS_STD, "scale": NORM_SCALE_STD, "sinks": SINK_STD}[leaf]
        w.assign(rng.normal(0.0, std, shape).astype(np.float32))


def run_call(layer, class_name, inputs, call_args):
    """Calls the layer on the file-style inputs; returns the file-style results (output, cache...).

    The layer gets copies: the numpy backend's `ops.slice_update` writes into its input array
    (keras/src/backend/numpy/core.py `inputs[mesh] = updates`), so a cached call would otherwise
    overwrite the caller's cache (and the previous call's returned cache in a chain)."""
    inputs = {n: np.array(v, copy=True) for n, v in inputs.items()}
    kwargs = {"attention_mask": inputs["attention_mask"]}
    if "cache" in inputs:
        kwargs["cache"] = inputs["cache"]
    if "cache.0" in inputs:
        kwargs["cache"] = (inputs["cache.0"], inputs["cache.1"])
    if "cache_update_mask" in inputs:
        kwargs["cache_update_mask"] = inputs["cache_update_mask"]
    kwargs.update(call_args)
    result = layer(inputs[INPUT_X[class_name]], **kwargs)
    if "cache" not in kwargs:
        return {"output": np.asarray(result, dtype=np.float32)}
    out, cache = result
    res = {"output": np.asarray(out, dtype=np.float32)}
    if isinstance(cache, (tuple, list)):
        res["cache.0"] = np.asarray(cache[0], dtype=np.float32)
        res["cache.1"] = np.asarray(cache[1], dtype=np.float32)
    else:
        res["cache"] = np.asarray(cache, dtype=np.float32)
    return res


def rebuild_and_run(tensors, meta):
    """Rebuilds the layer of a file (or job), loads its weights by path and reruns its call."""
    class_name = meta["class_name"]
    layer = layer_from_config(class_name, json.loads(meta["config"]), meta.get("config_source", ""))
    build_by_call(layer, int(meta["hidden_dim"]))
    for w in layer.weights:
        if w.path not in tensors:
            raise BadInput(f"missing weight {w.path} (shape {tuple(w.shape)})")
        if tuple(tensors[w.path].shape) != tuple(w.shape):
            raise BadInput(f"weight {w.path}: shape {tensors[w.path].shape}, layer has {tuple(w.shape)}")
        w.assign(tensors[w.path])
    return run_call(layer, class_name, tensors, json.loads(meta["call"])), layer


# ------------------------------------------------------------------------------------------ generate


def head_dim_of(layer):
    """(H, Nkv) from the built layer's key kernel: (D, Nkv, H), or (Nkv, D, H) for the Gemma family."""
    for w in layer.weights:
        if w.path.endswith("/key/kernel"):
            gemma = type(layer).__name__ in (GM, G3)
            return int(w.shape[-1]), int(w.shape[0] if gemma else w.shape[1])
    raise AssertionError("no key kernel")


def generate_case(c, keras_versions):
    """The files of one case: a list of (file name, tensors, metadata, jax job or None)."""
    classes = layer_classes()
    rng = np.random.default_rng(seed_of(c["name"]))
    ctor = constructor_args(c)
    layer = classes[c["cls"]](**ctor)
    d, b = c["d"], c["b"]
    build_by_call(layer, d)
    fill_weights(layer, rng)
    cfg, source = layer_config(layer, c["cls"], ctor)
    # The config must rebuild the same layer.
    again = layer_from_config(c["cls"], json.loads(json.dumps(cfg)), source)
    build_by_call(again, d)
    assert [(w.path, tuple(w.shape)) for w in again.weights] == [(w.path, tuple(w.shape)) for w in layer.weights]
    if source == CONFIG_SOURCE[False]:
        assert again.get_config() == cfg, c["name"]
    weights = {w.path: np.asarray(w.numpy(), dtype=np.float32) for w in layer.weights}
    h, nkv = head_dim_of(layer)
    x_std = c["x_gain"] * 1.6 / (KERNEL_STD * np.sqrt(d))  # projections of std ~1.6
    files, cache, chained = [], None, len(c["calls"]) > 1
    for step, k in enumerate(c["calls"]):
        t = k["t"]
        x = rng.normal(0.0, x_std, (b, t, d)).astype(np.float32)
        inputs = {INPUT_X[c["cls"]]: x}
        cached = k["idx"] is not None
        if cached:
            s = k["s"]
            if cache is None:
                fill = k["cache_fill"] or 0
                shape = (b, s, nkv, h)
                parts = []
                for _ in range(2):
                    part = np.zeros(shape, np.float32)
                    part[:, :fill] = rng.normal(0.0, 1.5, (b, fill, nkv, h)).astype(np.float32)
                    parts.append(part)
                cache = tuple(parts) if c["cls"] == G3 else np.stack(parts, axis=1)
            if c["cls"] == G3:
                inputs["cache.0"], inputs["cache.1"] = cache
            else:
                inputs["cache"] = cache
        else:
            s = t
        padding = None if k["padding"] is None else k["padding"](b, t)
        attn = None if k["attn"] is None else np.ascontiguousarray(k["attn"](b, t, s))
        mask = decoder_mask(c["cls"], x, cache=cache if cached else None, idx=k["idx"], padding_mask=padding,
                            attention_mask=attn, window=k["window"], bidirectional=k["bidirectional"])
        assert mask.shape == (b, t, s), (c["name"], mask.shape)
        merged = padding is not None or attn is not None or k["window"] is not None
        assert mask.dtype == (np.int32 if merged else np.bool_), (c["name"], mask.dtype)
        inputs["attention_mask"] = mask
        if k["cum"] is not None:
            inputs["cache_update_mask"] = np.array(k["cum"], dtype=bool).reshape(b, 1)
        call_args = {"cache_update_index": k["idx"]} if cached else {}
        results = run_call(layer, c["cls"], inputs, call_args)
        tensors = dict(weights)
        tensors.update(inputs)
        tensors.update({"expected." + n: v for n, v in results.items()})
        for n, v in tensors.items():
            assert v.dtype in (np.float32, np.int32, np.bool_), (n, v.dtype)
            if v.dtype == np.float32:
                assert np.all(np.isfinite(v)), (c["name"], n)
        meta = {
            "class_name": c["cls"],
            "config": json.dumps(cfg),
            "config_source": source,
            "call": json.dumps(call_args),
            "hidden_dim": str(d),
            "description": k["description"],
            **keras_versions,
        }
        if chained:
            meta["chain"] = c["name"]
            meta["chain_step"] = str(step)
        fname = f"{c['name']}_{step}" if chained else c["name"]
        job = None
        if c["jax"]:
            job = (dict(weights, **inputs), {n: meta[n] for n in ("class_name", "config", "config_source",
                                                                    "call", "hidden_dim")})
        files.append((fname, tensors, meta, job))
        if cached:
            cache = (results["cache.0"], results["cache.1"]) if c["cls"] == G3 else results["cache"]
    return files


def save_st(path, tensors, meta):
    """safetensors.numpy.save, with the header's metadata in sorted order (reproducible files)."""
    from safetensors.numpy import save
    raw = save({n: np.ascontiguousarray(v) for n, v in tensors.items()}, metadata=meta)
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    md = header.pop("__metadata__")
    entries = sorted(header.items(), key=lambda kv: (kv[1]["data_offsets"][0], kv[0]))
    new = {"__metadata__": dict(sorted(md.items())), **dict(entries)}
    text = json.dumps(new, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + raw[8 + n:])


def load_st(path):
    from safetensors import safe_open
    try:
        with safe_open(path, framework="numpy") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except Exception as e:  # noqa: BLE001
        raise BadInput(f"{path}: cannot read safetensors: {e}") from e


def run_jax_worker(paths):
    """Runs the jobs (safetensors files) on the JAX backend in a subprocess; returns their results."""
    out_dir = tempfile.mkdtemp(prefix="kerashub_jax_out_")
    try:
        env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
        cmd = [sys.executable, os.path.abspath(__file__), "--jax-worker", out_dir] + list(paths)
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout)
            raise RuntimeError(f"JAX worker failed (exit {proc.returncode})")
        results = []
        for i in range(len(paths)):
            with np.load(os.path.join(out_dir, f"{i}.npz")) as z:
                results.append({k: z[k] for k in z.files})
        return results
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def jax_worker(out_dir, paths):
    import keras
    assert keras.backend.backend() == "jax", keras.backend.backend()
    from keras_hub.src.utils.keras_utils import fused_attention_op_available
    assert fused_attention_op_available()
    for i, p in enumerate(paths):
        tensors, meta = load_st(p)
        results, _ = rebuild_and_run(tensors, meta)
        np.savez(os.path.join(out_dir, f"{i}.npz"), **results)
    return 0


def generate(out_dir):
    import keras
    import keras_hub
    assert keras.backend.backend() == "numpy", "generate with KERAS_BACKEND=numpy"
    start = time.time()
    versions = {"keras_version": keras.__version__, "keras_hub_version": keras_hub.__version__,
                "keras_backend": keras.backend.backend()}
    files = []
    for c in CASES:
        files += generate_case(c, versions)
    names = [f[0] for f in files]
    assert len(set(names)) == len(names)
    jobs = [(i, f[3]) for i, f in enumerate(files) if f[3] is not None]
    job_dir = tempfile.mkdtemp(prefix="kerashub_jax_jobs_")
    try:
        paths = []
        for i, (tensors, meta) in jobs:
            p = os.path.join(job_dir, f"{i}.safetensors")
            save_st(p, tensors, meta)
            paths.append(p)
        jax_results = run_jax_worker(paths) if paths else []
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)
    for (i, _), res in zip(jobs, jax_results):
        for n, v in res.items():
            assert v.dtype == np.float32 and np.all(np.isfinite(v)), (files[i][0], n)
            files[i][1]["jax." + n] = v
    os.makedirs(out_dir, exist_ok=True)
    keep = {n + ".safetensors" for n in names} | {n + e for n in KERAS_FILE_CASES for e in KERAS_EXTS}
    for ext in (".safetensors",) + KERAS_EXTS:
        for old in glob.glob(os.path.join(out_dir, "*" + ext)):
            if os.path.basename(old) not in keep:
                os.remove(old)
    total = 0
    for fname, tensors, meta, _ in files:
        path = os.path.join(out_dir, fname + ".safetensors")
        save_st(path, tensors, meta)
        back, back_meta = load_st(path)
        assert back_meta == meta and sorted(back) == sorted(tensors)
        assert all(back[n].dtype == tensors[n].dtype and np.array_equal(back[n], tensors[n]) for n in tensors)
        size = os.path.getsize(path)
        total += size
        print(f"{size:8d}  {path}")
    n_files = len(files)
    by_name = {f[0]: f for f in files}
    for name in KERAS_FILE_CASES:
        _, tensors, meta, _ = by_name[name]
        written, reason = write_keras_files(out_dir, name, tensors, meta)
        if reason is not None:
            print(f"          no {name}.keras: {reason}")
        for path in written:
            size = os.path.getsize(path)
            total += size
            n_files += 1
            print(f"{size:8d}  {path}")
            if not path.endswith(".layer.json"):
                assert check_keras_file(path, tensors, meta), path
    print(f"{n_files} files, {total} bytes, {time.time() - start:.1f} s")


# ------------------------------------------------------------------------------------------ Keras files


def keras_model_of(class_name, cfg, source, d, mask_dtype, model_name):
    """(model, layer): a functional model of the one layer, inputs `hidden_states`/`x` (B, T, D) and
    `attention_mask` (B, T, S) of the fixture's mask dtype, output the layer's call on them."""
    import keras
    layer = layer_from_config(class_name, cfg, source)
    x = keras.Input((None, d), name=INPUT_X[class_name])
    mask = keras.Input((None, None), dtype=mask_dtype, name="attention_mask")
    return keras.Model([x, mask], layer(x, attention_mask=mask), name=model_name), layer


def innermost(e):
    """The first exception of a chain (load_model wraps the cause in two more TypeErrors)."""
    while (e.__cause__ or e.__context__) is not None:
        e = e.__cause__ or e.__context__
    return f"{type(e).__name__}: {e}"


def keras_model_failure(model, tensors, meta):
    """Why no `<case>.keras` for a broken-config class: model.save's exception, load_model's, or the
    loaded model's mismatch; None if it would round-trip (then it should be written)."""
    import keras
    tmp = tempfile.mkdtemp(prefix="kerashub_keras_probe_")
    try:
        path = os.path.join(tmp, "probe.keras")
        try:
            model.save(path)
        except Exception as e:  # noqa: BLE001
            return f"model.save raises {innermost(e)}"
        try:
            back = keras.saving.load_model(path)
        except Exception as e:  # noqa: BLE001
            return f"model.save works, keras.saving.load_model raises {innermost(e)}"
        got = keras_model_output(back, meta, tensors)
        if not np.allclose(got, tensors["expected.output"], atol=ATOL, rtol=RTOL):
            return "the loaded model's output differs"
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def keras_model_output(model, meta, tensors):
    """The model's output (B, T, D) on a fixture's `hidden_states`/`x` and `attention_mask`."""
    x = np.array(tensors[INPUT_X[meta["class_name"]]], copy=True)
    return np.asarray(model([x, np.array(tensors["attention_mask"], copy=True)]), dtype=np.float32)


def write_keras_files(out_dir, name, tensors, meta):
    """`<name>.keras` (not for the broken-config classes: the reason is returned), `<name>.weights.h5`
    and `<name>.layer.json` of a fixture's layer; returns (paths written, reason or None)."""
    import keras
    keras.utils.clear_session()  # the sublayers' generated names (`dropout`, ...) from a fresh count
    class_name, source = meta["class_name"], meta["config_source"]
    model, layer = keras_model_of(class_name, json.loads(meta["config"]), source, int(meta["hidden_dim"]),
                                  str(tensors["attention_mask"].dtype), name + "_model")
    assert sorted(w.path for w in layer.weights) == sorted(n for n in tensors if n.startswith(name + "/"))
    for w in layer.weights:
        w.assign(tensors[w.path])
    written, reason = [], None
    if source == CONFIG_SOURCE[False]:
        tmp = tempfile.mkdtemp(prefix="kerashub_keras_")
        try:
            model.save(os.path.join(tmp, "model.keras"))
            path = os.path.join(out_dir, name + ".keras")
            normalize_keras_zip(os.path.join(tmp, "model.keras"), path)
            written.append(path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    else:
        reason = keras_model_failure(model, tensors, meta)
        assert reason is not None, f"{name}: a .keras of {class_name} round-trips now: write it"
    path = os.path.join(out_dir, name + ".weights.h5")
    model.save_weights(path)
    written.append(path)
    path = os.path.join(out_dir, name + ".layer.json")
    with open(path, "w") as f:
        f.write(meta["config"])
    written.append(path)
    return written, reason


def check_keras_file(path, tensors, meta):
    """Loads a `.keras` (keras.saving.load_model) or `.weights.h5` (+ `.layer.json`: a model of the
    layer rebuilt from it, then load_weights) and reruns the fixture's call; True if it matches."""
    import keras
    keras.utils.clear_session()
    class_name, cfg = meta["class_name"], json.loads(meta["config"])
    if path.endswith(".keras"):
        try:
            model = keras.saving.load_model(path)
        except Exception as e:  # noqa: BLE001
            raise BadInput(f"{path}: keras.saving.load_model raises {innermost(e)}") from e
        layer = model.get_layer(cfg["name"])
        if type(layer).__name__ != class_name:
            raise BadInput(f"{path}: layer {cfg['name']} is a {type(layer).__name__}, not a {class_name}")
        if json.loads(json.dumps(layer.get_config())) != cfg:
            print("  the loaded layer's get_config() differs from the fixture's config")
            return False
    else:
        stem = path[: -len(".weights.h5")]
        try:
            with open(stem + ".layer.json") as f:
                text = f.read()
        except OSError as e:
            raise BadInput(f"{path}: no {os.path.basename(stem)}.layer.json: {e}") from e
        if text != meta["config"]:
            print("  the .layer.json differs from the fixture's config")
            return False
        model, layer = keras_model_of(class_name, json.loads(text), meta["config_source"], int(meta["hidden_dim"]),
                                      str(tensors["attention_mask"].dtype), os.path.basename(stem) + "_model")
        try:
            model.load_weights(path)
        except Exception as e:  # noqa: BLE001
            raise BadInput(f"{path}: load_weights raises {innermost(e)}") from e
    ok = True
    for w in layer.weights:
        if w.path not in tensors or not np.array_equal(np.asarray(w.numpy()), tensors[w.path]):
            print(f"  weight {w.path}: not the fixture's")
            ok = False
    return compare("expected.output", keras_model_output(model, meta, tensors), tensors["expected.output"]) and ok


# ------------------------------------------------------------------------------------------ check


class BadInput(Exception):
    """A file that cannot be checked (exit status 2)."""


REQUIRED_META = ("class_name", "config", "config_source", "call", "hidden_dim", "description",
                 "keras_version", "keras_hub_version", "keras_backend")


def compare(what, got, want):
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape or got.dtype != want.dtype:
        print(f"  {what}: {got.dtype}{got.shape} (keras) vs {want.dtype}{want.shape} (file)")
        return False
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    bad = int(np.sum(~(diff <= ATOL + RTOL * np.abs(want.astype(np.float64)))))
    print(f"  {what}: max |diff| {diff.max() if diff.size else 0.0:.3e}, {bad} of {diff.size} out of tolerance")
    return bad == 0


def check(directory, with_jax=True):
    import keras
    assert keras.backend.backend() == "numpy", "check with KERAS_BACKEND=numpy"
    paths = sorted(glob.glob(os.path.join(directory, "*.safetensors")))
    if not paths:
        raise BadInput(f"{directory}: no .safetensors files")
    ok, jax_paths, jax_want = True, [], []
    for p in paths:
        tensors, meta = load_st(p)
        missing = [k for k in REQUIRED_META if k not in meta]
        if missing:
            raise BadInput(f"{p}: metadata lacks {missing}")
        if meta["class_name"] not in INPUT_X:
            raise BadInput(f"{p}: unknown class_name {meta['class_name']!r}")
        print(f"check {os.path.basename(p)}: {meta['class_name']} call={meta['call']} "
              f"({meta['config_source']})")
        try:
            results, layer = rebuild_and_run(tensors, meta)
        except BadInput as e:
            raise BadInput(f"{p}: {e}") from e
        want = {k[len("expected."):]: v for k, v in tensors.items() if k.startswith("expected.")}
        if sorted(want) != sorted(results):
            print(f"  expected.* tensors {sorted(want)}, the call returns {sorted(results)}")
            ok = False
        for n in sorted(set(want) & set(results)):
            ok &= compare("expected." + n, results[n], want[n])
        jax_t = {k[len("jax."):]: v for k, v in tensors.items() if k.startswith("jax.")}
        if jax_t:
            jax_paths.append(p)
            jax_want.append(jax_t)
    keras_paths = sorted(q for ext in (".keras", ".weights.h5") for q in glob.glob(os.path.join(directory, "*" + ext)))
    for q in glob.glob(os.path.join(directory, "*.layer.json")):
        if not os.path.exists(q[: -len(".layer.json")] + ".weights.h5"):
            raise BadInput(f"{q}: no .weights.h5 beside it")
    for q in keras_paths:
        stem = q[: -len(".keras")] if q.endswith(".keras") else q[: -len(".weights.h5")]
        if stem + ".safetensors" not in paths:
            raise BadInput(f"{q}: no {os.path.basename(stem)}.safetensors (its inputs and expected output)")
        tensors, meta = load_st(stem + ".safetensors")
        if json.loads(meta["call"]) != {}:
            raise BadInput(f"{q}: its fixture is a cached call")
        print(f"check {os.path.basename(q)}: {meta['class_name']} on {os.path.basename(stem)}.safetensors")
        ok &= check_keras_file(q, tensors, meta)
    if with_jax and jax_paths:
        print(f"JAX backend: {len(jax_paths)} files")
        for p, want, got in zip(jax_paths, jax_want, run_jax_worker(jax_paths)):
            print(f"check {os.path.basename(p)} (jax)")
            if sorted(want) != sorted(got):
                print(f"  jax.* tensors {sorted(want)}, the call returns {sorted(got)}")
                ok = False
            for n in sorted(set(want) & set(got)):
                ok &= compare("jax." + n, got[n], want[n])
    print(f"{len(paths) + len(keras_paths)} files: " + ("MATCH" if ok else "MISMATCH"))
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="write the fixtures into this folder")
    ap.add_argument("--check", metavar="DIR", help="check every .safetensors, .keras and .weights.h5 file of "
                                                    "DIR against KerasHub")
    ap.add_argument("--no-jax", action="store_true", help="with --check: skip the jax.* tensors")
    ap.add_argument("--jax-worker", nargs="+", metavar=("OUT_DIR", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.jax_worker:
        return jax_worker(args.jax_worker[0], args.jax_worker[1:])
    if bool(args.out) == bool(args.check):
        ap.error("give exactly one of --out and --check")
    if args.out:
        generate(args.out)
        return 0
    try:
        return 0 if check(args.check, with_jax=not args.no_jax) else 1
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
