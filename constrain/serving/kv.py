"""Key/value memory of the generation loop, and the attention that reads it.

Running rows own a *slot*: a contiguous stretch of keys and values per layer
(``[slots, kv_heads, capacity, head_dim]``), so a decode step attends over a view of
the store, never a copy. Prompts leave their full token blocks in a
:class:`PrefixCache` (a fixed pool, LRU), from which a later request with the same
prefix copies them into its slot instead of recomputing them.

The model runs through ``transformers``' attention interface: one forward pass takes the
step's tokens of every row packed into one sequence, with their positions; the function
registered here writes each row's new keys into its slot and attends per row.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F

from ..errors import ConstrainError

ATTENTION_NAME = "constrain_slots"
BLOCK = 16  # tokens per prefix-cache block
_GROW = 256  # slot capacity grows in steps of this many tokens

_local = threading.local()


@dataclass
class Segment:
    """One row's tokens in a packed step: ``count`` tokens from packed index ``start``,
    written to ``slot`` at positions ``pos .. pos + count - 1``."""

    start: int
    count: int
    slot: int
    pos: int


@dataclass
class StepLayout:
    """How a packed step maps onto slots; built once per step, read by every layer."""

    store: "SlotStore"
    single: list[Segment]
    multi: list[tuple[Segment, torch.Tensor | None]]
    single_idx: torch.Tensor | None = None
    single_slot: torch.Tensor | None = None
    single_pos: torch.Tensor | None = None
    span: int = 0  # slots [0, span) take part in the one-token attention
    span_len: int = 0  # over keys [0, span_len)
    single_mask: torch.Tensor | None = None  # [span, 1, 1, span_len] bool
    dense: bool = False  # one-token rows are slots 0..n-1 at packed indices 0..n-1

    @classmethod
    def build(cls, store: "SlotStore", segments: Sequence[Segment]) -> "StepLayout":
        device = store.device
        single = [s for s in segments if s.count == 1]
        multi = []
        for s in segments:
            if s.count == 1:
                continue
            mask = None
            if s.pos:  # queries see the cached prefix and, causally, each other
                qpos = torch.arange(s.pos, s.pos + s.count, device=device)
                mask = (torch.arange(s.pos + s.count, device=device)[None, :] <= qpos[:, None])[None, None]
            multi.append((s, mask))
        layout = cls(store, single, multi)
        if single:
            span = max(s.slot for s in single) + 1
            lengths = torch.ones(span, dtype=torch.long)  # idle slots read key 0 (their output is dropped)
            for s in single:
                lengths[s.slot] = s.pos + 1
            span_len = int(lengths.max())
            layout.span, layout.span_len = span, span_len
            layout.single_idx = torch.tensor([s.start for s in single], device=device)
            layout.single_slot = torch.tensor([s.slot for s in single], device=device)
            layout.single_pos = torch.tensor([s.pos for s in single], device=device)
            lengths = lengths.to(device)
            layout.single_mask = (torch.arange(span_len, device=device)[None, :] < lengths[:, None])[:, None, None, :]
            layout.dense = all(s.slot == i and s.start == i for i, s in enumerate(single)) and span == len(single)
        return layout


def _attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
               attention_mask: Any, scaling: float | None = None, dropout: float = 0.0, **kwargs: Any):
    """``transformers`` attention over the slot store (registered as ``constrain_slots``)."""
    layout: StepLayout | None = getattr(_local, "layout", None)
    if layout is None:
        raise ConstrainError(f"the {ATTENTION_NAME!r} attention runs only inside constrain.LLM's loop")
    for unsupported in ("softcap", "s_aux", "sinks", "sliding_window"):
        if kwargs.get(unsupported) is not None:
            raise ConstrainError(f"this model's attention uses {unsupported!r}, which constrain.LLM does not support")
    store = layout.store
    K, V = store.keys[module.layer_idx], store.values[module.layer_idx]
    q = query[0]  # [Hq, N, D]
    k_new = key[0].to(K.dtype)
    v_new = value[0].to(V.dtype)
    out = torch.empty(q.shape[1], q.shape[0], q.shape[2], dtype=query.dtype, device=query.device)  # [N, Hq, D]
    if layout.single:
        idx, slots, pos = layout.single_idx, layout.single_slot, layout.single_pos
        n, span, length = len(layout.single), layout.span, layout.span_len
        if layout.dense:
            K[slots, :, pos] = k_new[:, :n].transpose(0, 1)
            V[slots, :, pos] = v_new[:, :n].transpose(0, 1)
            qb = q[:, :n].transpose(0, 1).unsqueeze(2)  # [n, Hq, 1, D]
        else:
            K[slots, :, pos] = k_new[:, idx].transpose(0, 1)
            V[slots, :, pos] = v_new[:, idx].transpose(0, 1)
            qb = q.new_zeros(span, q.shape[0], 1, q.shape[2])
            qb[slots] = q[:, idx].transpose(0, 1).unsqueeze(2)
        res = F.scaled_dot_product_attention(
            qb, K[:span, :, :length], V[:span, :, :length],
            attn_mask=layout.single_mask, scale=scaling, enable_gqa=True,
        )
        if layout.dense:
            out[:n] = res[:, :, 0]
        else:
            out[idx] = res[slots, :, 0]
    for seg, mask in layout.multi:
        a, b = seg.pos, seg.pos + seg.count
        K[seg.slot, :, a:b] = k_new[:, seg.start : seg.start + seg.count]
        V[seg.slot, :, a:b] = v_new[:, seg.start : seg.start + seg.count]
        res = F.scaled_dot_product_attention(
            q[:, seg.start : seg.start + seg.count].unsqueeze(0), K[seg.slot : seg.slot + 1, :, :b],
            V[seg.slot : seg.slot + 1, :, :b], attn_mask=mask, is_causal=mask is None, scale=scaling, enable_gqa=True,
        )
        out[seg.start : seg.start + seg.count] = res[0].transpose(0, 1)
    return out.unsqueeze(0), None


_registered = False


def register_attention() -> None:
    global _registered
    if not _registered:
        from transformers import AttentionInterface

        AttentionInterface.register(ATTENTION_NAME, _attention)
        _registered = True


@contextlib.contextmanager
def slot_attention(model: Any, layout: StepLayout) -> Iterator[None]:
    """Run ``model`` with its attention reading and writing the slot store of ``layout``."""
    config = model.config
    previous = config._attn_implementation
    config._attn_implementation = ATTENTION_NAME
    _local.layout = layout
    try:
        yield
    finally:
        _local.layout = None
        config._attn_implementation = previous


def model_geometry(model: Any) -> tuple[int, int, int]:
    """(layers, kv heads, head dim) of a decoder-only ``transformers`` model; raises
    :class:`ConstrainError` for models the loop cannot drive."""
    config = model.config
    if getattr(config, "is_encoder_decoder", False):
        raise ConstrainError("constrain.LLM drives decoder-only causal language models; this one is encoder-decoder")
    can_set = getattr(model, "_can_set_attn_implementation", None)
    if can_set is not None and not can_set():
        raise ConstrainError(
            f"{type(model).__name__} does not route attention through transformers' AttentionInterface, "
            "which constrain.LLM needs; use constrain.integrations.transformers.LogitsProcessor with generate() instead"
        )
    layer_types = getattr(config, "layer_types", None)
    if layer_types and any(t != "full_attention" for t in layer_types):
        raise ConstrainError(f"constrain.LLM needs full attention in every layer; this model has {sorted(set(layer_types))}")
    if getattr(config, "use_sliding_window", False) and getattr(config, "sliding_window", None):
        raise ConstrainError("constrain.LLM does not support sliding-window attention yet")
    try:
        layers = config.num_hidden_layers
        heads = config.num_attention_heads
        kv_heads = getattr(config, "num_key_value_heads", None) or heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    except AttributeError as exc:
        raise ConstrainError(f"cannot read the attention geometry of {type(model).__name__}: {exc}") from exc
    return int(layers), int(kv_heads), int(head_dim)


class SlotStore:
    """Keys and values of the running rows: ``[slots, kv_heads, capacity, head_dim]`` per
    layer, the capacity grown (by copying) when a row outgrows it."""

    def __init__(self, layers: int, kv_heads: int, head_dim: int, slots: int, dtype: torch.dtype,
                 device: torch.device):
        self.layers, self.kv_heads, self.head_dim, self.slots = layers, kv_heads, head_dim, slots
        self.dtype, self.device = dtype, device
        self.capacity = 0
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []

    def bytes_per_token(self) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * torch.empty((), dtype=self.dtype).element_size()

    def reserve(self, length: int) -> None:
        """Make room for ``length`` positions in every slot."""
        if length <= self.capacity:
            return
        cap = -(-length // _GROW) * _GROW
        shape = (self.slots, self.kv_heads, cap, self.head_dim)
        keys = [torch.zeros(shape, dtype=self.dtype, device=self.device) for _ in range(self.layers)]
        values = [torch.zeros(shape, dtype=self.dtype, device=self.device) for _ in range(self.layers)]
        for old, new in zip(self.keys + self.values, keys + values):
            new[:, :, : self.capacity] = old
        self.keys, self.values, self.capacity = keys, values, cap

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.keys + self.values)


@dataclass
class _Entry:
    uid: int
    block: int
    parent: int


class PrefixCache:
    """Prompt blocks of ``BLOCK`` tokens, keyed by (the parent block, the block's tokens):
    a block is found only behind the exact prefix it was computed after. A fixed pool of
    ``capacity_tokens // BLOCK`` blocks (allocated on first use) with LRU eviction."""

    def __init__(self, store: SlotStore, capacity_tokens: int):
        self.store = store
        self.num_blocks = max(0, int(capacity_tokens) // BLOCK)
        self._map: OrderedDict[tuple[int, tuple[int, ...]], _Entry] = OrderedDict()
        self._free: list[int] = list(range(self.num_blocks - 1, -1, -1))
        self._uid = 0
        self._keys: torch.Tensor | None = None  # [layers, blocks, kv_heads, BLOCK, head_dim]
        self._values: torch.Tensor | None = None
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._map)

    def _pool(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._keys is None or self._values is None:
            s = self.store
            shape = (s.layers, self.num_blocks, s.kv_heads, BLOCK, s.head_dim)
            self._keys = torch.empty(shape, dtype=s.dtype, device=s.device)
            self._values = torch.empty(shape, dtype=s.dtype, device=s.device)
        return self._keys, self._values

    def nbytes(self) -> int:
        s = self.store
        return self.num_blocks * BLOCK * s.bytes_per_token()

    def match(self, tokens: Sequence[int], limit: int) -> list[int]:
        """Pool blocks holding the longest cached prefix of ``tokens`` (at most ``limit``
        tokens), most recently used from now on."""
        blocks: list[int] = []
        parent = 0
        for b in range(min(limit, len(tokens)) // BLOCK):
            entry = self._map.get((parent, tuple(tokens[b * BLOCK : (b + 1) * BLOCK])))
            if entry is None:
                break
            self._map.move_to_end((parent, tuple(tokens[b * BLOCK : (b + 1) * BLOCK])))
            blocks.append(entry.block)
            parent = entry.uid
        return blocks

    def load(self, blocks: list[int], slot: int) -> None:
        """Copy ``blocks`` into positions ``0 .. len(blocks) * BLOCK`` of ``slot``."""
        if not blocks:
            return
        keys, values = self._pool()
        n = len(blocks) * BLOCK
        idx = torch.tensor(blocks, device=keys.device)
        s = self.store
        for layer in range(s.layers):
            s.keys[layer][slot, :, :n] = keys[layer, idx].transpose(0, 1).reshape(s.kv_heads, n, s.head_dim)
            s.values[layer][slot, :, :n] = values[layer, idx].transpose(0, 1).reshape(s.kv_heads, n, s.head_dim)

    def insert(self, tokens: Sequence[int], slot: int, computed: int) -> int:
        """Keep the full blocks among the first ``computed`` positions of ``slot`` (which
        hold ``tokens``); returns how many blocks were added."""
        if not self.num_blocks:
            return 0
        keys, values = self._pool()
        s = self.store
        parent, added = 0, 0
        chain: set[int] = set()
        for b in range(min(computed, len(tokens)) // BLOCK):
            key = (parent, tuple(tokens[b * BLOCK : (b + 1) * BLOCK]))
            entry = self._map.get(key)
            if entry is None:
                block = self._take(chain)
                if block is None:
                    break
                self._uid += 1
                entry = self._map[key] = _Entry(self._uid, block, parent)
                lo, hi = b * BLOCK, (b + 1) * BLOCK
                for layer in range(s.layers):
                    keys[layer, block] = s.keys[layer][slot, :, lo:hi]
                    values[layer, block] = s.values[layer][slot, :, lo:hi]
                added += 1
            else:
                self._map.move_to_end(key)
            chain.add(entry.uid)
            parent = entry.uid
        return added

    def _take(self, chain: set[int]) -> int | None:
        if self._free:
            return self._free.pop()
        for key, entry in self._map.items():  # least recently used first
            if entry.uid not in chain:
                del self._map[key]
                self.evictions += 1
                return entry.block
        return None

    def clear(self) -> None:
        self._map.clear()
        self._free = list(range(self.num_blocks - 1, -1, -1))
