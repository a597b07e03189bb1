"""Device-resident masks: the tables reproduce the host masks and states exactly, too-large
grammars fall back with a reason, and the transformers processor and constrain.LLM give
the same greedy outputs with and without them."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import constrain
from conftest import real_vocab
from constrain import DeviceLimits, DeviceMasks, DeviceStepper, JsonSchema, Lark, Regex
from constrain.bitmask import mask_hash
from constrain.device_masks import TERMINATED

POINT = {
    "type": "object",
    "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}, "label": {"type": "string", "maxLength": 10}},
    "required": ["x", "y", "label"],
    "additionalProperties": False,
}
ITEM = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "kind": {"enum": ["a", "bb", "ccc"]},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 5}, "maxItems": 3},
        "ok": {"type": "boolean"},
        "price": {"type": "number"},
    },
    "required": ["name"],
    "additionalProperties": False,
}
DATE = Regex(r"(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])")
SPECS = [
    DATE,
    Regex(r"[a-z]+@[a-z]+\.(com|org|net)"),
    Regex(r"(\+|-)?[0-9]{1,6}(\.[0-9]{1,3})?"),
    JsonSchema(POINT, whitespace="compact"),
    JsonSchema(POINT),
    JsonSchema(ITEM, whitespace="compact"),
    Lark(r"""
start: "[" item ("," item)* "]"
item: WORD
WORD: /[a-z]{1,8}/
"""),
]


@pytest.fixture(scope="module")
def qwen2():
    return real_vocab("qwen2")


def _random_walk(grammar, table, rng: random.Random, steps: int):
    """Follow random allowed tokens with a host matcher and the table side by side,
    checking mask, hash, state and acceptance at each step; returns the states visited."""
    m = grammar.matcher()
    s = table.initial
    visited = []
    for _ in range(steps):
        host = m.mask_words()
        dev = table.mask(s).view(np.uint32)
        assert np.array_equal(host, dev)
        assert mask_hash(host) == mask_hash(dev)
        assert table.state_of(m.state) == s
        assert bool(table.accepting[s]) == m.is_accepting()
        visited.append(s)
        allowed = m.allowed_token_ids()
        if len(allowed) == 0:
            break
        tok = int(rng.choice(allowed.tolist()))
        s2 = table.step(s, tok)
        assert m.advance(tok)
        if m.is_terminated():
            assert s2 == TERMINATED
            assert not table.mask(s2).any()
            break
        assert s2 == table.state_of(m.state)
        # a token the mask leaves out leads nowhere in the table either
        bad = int(rng.randrange(grammar.vocab.model_vocab_size))
        if not (int(host[bad >> 5]) >> (bad & 31)) & 1:
            assert table.step(s, bad) == -1
        s = s2
    return visited


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: type(s).__name__)
def test_tables_reproduce_host_masks(qwen2, spec):
    grammar = constrain.compile(spec, qwen2)
    table = DeviceMasks.build(grammar)
    assert table.resident, table.reason
    assert table.n_classes < 2000  # tokens that behave alike share a column
    rng = random.Random(7)
    for _ in range(12):
        _random_walk(grammar, table, rng, 60)
    # every state's mask is the engine's mask of its hypothesis set
    for s, hid in enumerate(table.hids[1:], start=1):
        assert np.array_equal(table.mask(s).view(np.uint32), grammar.engine.mask(hid))


def test_sampled_documents_step_alike(qwen2):
    """Documents tokenized the way a tokenizer would: the table follows them to the end."""
    grammar = constrain.compile(JsonSchema(POINT), qwen2)
    table = DeviceMasks.of(grammar)
    assert table.resident, table.reason
    assert DeviceMasks.of(grammar) is table  # memoized
    docs = ['{"x": 12, "y": -3, "label": "lamp"}', '{"x":0,"y":7,"label":""}',
            '{\n  "x": 1,\n  "y": 2,\n  "label": "abcdefghij"\n}']
    for doc in docs:
        m = grammar.matcher()
        s = table.initial
        for tok in qwen2.longest_match(doc.encode()):
            assert np.array_equal(m.mask_words(), table.mask(s).view(np.uint32))
            assert m.advance(tok)
            s = table.step(s, tok)
            assert s == table.state_of(m.state)
        assert table.accepting[s] and m.is_accepting()
        eos = qwen2.eos_token_ids[0]
        assert table.step(s, eos) == TERMINATED


def test_fallback_names_the_limit(qwen2):
    recursive = constrain.compile({"type": "object"}, qwen2)  # any JSON value inside: not regular
    table = DeviceMasks.build(recursive, DeviceLimits(max_states=500))
    assert not table.resident
    assert "max_states=500" in table.reason
    assert table.next_state is None and table.table_bytes == 0
    with pytest.raises(constrain.ConstrainError, match="not made"):
        table.tensors("cpu")
    small = constrain.compile(DATE, qwen2)
    tight = DeviceMasks.build(small, DeviceLimits(max_table_bytes=1000))
    assert not tight.resident and "max_table_bytes" in tight.reason
    with pytest.raises(ValueError):
        DeviceLimits(max_states=0)
    with pytest.raises(constrain.ConstrainError, match="not made"):
        DeviceStepper([table], 1, "cpu")
    unique = constrain.compile({"type": "array", "items": {"type": "string"}, "uniqueItems": True}, qwen2)
    assert unique.unique_checker is not None
    got = DeviceMasks.build(unique)
    assert not got.resident and "uniqueItems" in got.reason


def test_stepper_gathers_masks_on_the_device(qwen2):
    grammars = [constrain.compile(DATE, qwen2), constrain.compile(JsonSchema(POINT, whitespace="compact"), qwen2)]
    tables = [DeviceMasks.of(g) for g in grammars]
    docs = ["1989-11-09", '{"x":1,"y":-20,"label":"hi"}']
    ids = [qwen2.longest_match(d.encode()) + [qwen2.eos_token_ids[0]] for d in docs]
    batch = [0, 1, 0, 1]
    for finished in ("none", "all"):
        stepper = DeviceStepper([tables[b] for b in batch], len(batch), "cpu", finished=finished)
        matchers = [grammars[b].matcher() for b in batch]
        for k in range(max(map(len, ids))):
            bm = stepper.bitmask()
            for row, m in enumerate(matchers):
                want = np.full(bm.shape[1], -1, dtype=np.int32) if m.is_terminated() and finished == "all" \
                    else m.mask_words().view(np.int32)
                assert np.array_equal(bm[row].numpy(), want), (row, k)
            toks = []
            for row, m in enumerate(matchers):
                seq = ids[batch[row]]
                tok = seq[k] if k < len(seq) else qwen2.eos_token_ids[0]  # finished rows are padded
                if not m.is_terminated():
                    assert m.advance(tok)
                toks.append(tok)
            stepper.advance(torch.tensor(toks))
        assert stepper.terminated().all()
        assert not stepper.dead().any()
    # a token the mask forbids sends the row to the dead state
    stepper = DeviceStepper(tables[0], 1, "cpu", finished="none")
    stepper.advance(torch.tensor(qwen2.longest_match(b"x")))
    assert stepper.dead().all() and not stepper.bitmask().any()


def test_budget_free_steps(qwen2):
    grammar = constrain.compile(JsonSchema(POINT, whitespace="compact"), qwen2)
    table = DeviceMasks.of(grammar)
    budget = 30
    free = table.budget_free_steps(budget)
    assert 0 <= free < budget
    rng = random.Random(3)
    for _ in range(6):
        m = grammar.matcher(max_tokens=budget)
        s = table.initial
        for _k in range(free + 1):
            assert np.array_equal(m.mask_words(), table.mask(s).view(np.uint32))
            allowed = m.allowed_token_ids()
            tok = int(rng.choice(allowed.tolist()))
            assert m.advance(tok)
            if m.is_terminated():
                break
            s = table.step(s, tok)
    assert table.budget_free_steps(1) == -1


# ---------------------------------------------------------------------- integrations


@pytest.fixture(scope="module")
def smol():
    from constrain import assets

    return assets.smollm2_model(), assets.smollm2_tokenizer()


CHAT = [{"role": "user", "content": "Give me a point with a label, in JSON."}]


def _hf(model, tok, grammar, vocab, max_new_tokens, device_masks, proc_budget=True):
    from constrain.integrations.transformers import LogitsProcessor

    text = tok.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    enc = tok([text, text], return_tensors="pt", add_special_tokens=False)
    eos = list(vocab.eos_token_ids)
    proc = LogitsProcessor(grammar, max_new_tokens=max_new_tokens if proc_budget else None, device_masks=device_masks)
    with torch.inference_mode():
        out = model.generate(**enc, logits_processor=[proc], max_new_tokens=max_new_tokens, do_sample=False,
                             eos_token_id=eos, pad_token_id=eos[0])
    return out[:, enc["input_ids"].shape[1]:].tolist(), proc


def test_processor_device_masks_equal_host(smol):
    from constrain.vocabulary import Vocabulary

    model, tok = smol
    vocab = Vocabulary.from_tokenizer(tok, model_vocab_size=model.config.vocab_size)
    grammar = constrain.compile(JsonSchema(POINT, whitespace="compact"), vocab)
    # no budget in the processor: the tables serve every step
    host, _ = _hf(model, tok, grammar, vocab, 30, False, proc_budget=False)
    dev, proc = _hf(model, tok, grammar, vocab, 30, True, proc_budget=False)
    assert dev == host
    assert proc.device_reason is None
    # with a budget: the tables serve the steps it cannot touch, then the host takes over
    for budget in (40, 14):
        host, _ = _hf(model, tok, grammar, vocab, budget, False)
        dev, proc = _hf(model, tok, grammar, vocab, budget, True)
        assert dev == host, budget
        assert proc.device_reason is None or "then host masks" in proc.device_reason
    # a grammar too large for tables: host masks, with the reason
    recursive = constrain.compile({"type": "object", "properties": {"a": {"type": "object"}}}, vocab)
    host, _ = _hf(model, tok, recursive, vocab, 16, False)
    dev, proc = _hf(model, tok, recursive, vocab, 16, DeviceLimits(max_states=200))
    assert dev == host
    assert "max_states=200" in proc.device_reason


def test_llm_device_masks_equal_host(smol):
    from constrain.serving import LLM

    model, tok = smol
    chats = [CHAT, [{"role": "user", "content": "When did the Berlin wall fall? Answer with a date."}],
             [{"role": "user", "content": "Describe an item as JSON."}]]
    formats = [JsonSchema(POINT, whitespace="compact"), DATE, JsonSchema(ITEM, whitespace="compact")]
    outs = {}
    for mode in (False, True):
        for jump in ("exact", False):
            with LLM(model, tok, max_batch_size=3, device_masks=mode, jump_forward=jump, freeze_heap=False) as llm:
                got = llm.generate(chats, formats, max_new_tokens=40)
                outs[mode, jump] = [(r.token_ids, r.finish_reason) for r in got]
                if mode:
                    assert llm.stats["device_mask_rows"] > 0
                else:
                    assert llm.stats["device_mask_rows"] == 0
    assert outs[True, "exact"] == outs[False, "exact"]
    assert outs[True, False] == outs[False, False]


# ---------------------------------------------------------------------- merged states

# Function-call arguments as MaskBench has them (Glaiveai2K calculate_area), objects
# closed: the optional keys of "dimensions" reach each point along many parse paths.
AREA = {
    "type": "object",
    "properties": {
        "shape": {"type": "string"},
        "dimensions": {
            "type": "object",
            "properties": {k: {"type": "number"} for k in ("base", "height", "length", "radius", "width")},
        },
    },
    "required": ["shape", "dimensions"],
}
OPTIONAL = {
    "type": "object",
    "properties": {k: {"type": "integer"} for k in ("a", "b", "c", "d")},
    "additionalProperties": False,
}


def _engine_closure(grammar, table):
    """Every hypothesis set the engine reaches from the start, stepped with one token of
    each of the table's token classes (tokens of a class lead alike from every state, so
    these reach every set), checked against the table on the way: the table state of a
    set has its mask and acceptance, and each class leads where the engine's step does."""
    engine, vocab = grammar.engine, grammar.vocab
    reps = np.full(table.n_classes, -1, dtype=np.int64)
    ids = np.arange(vocab.model_vocab_size)
    reps[table.class_of[ids][::-1]] = ids[::-1]  # the first token of each class
    eos = set(vocab.eos_token_ids)
    seen = {engine.initial}
    queue = [engine.initial]
    while queue:
        hid = queue.pop()
        s = table.state_of(hid)
        assert s > 0
        assert np.array_equal(table.mask(s).view(np.uint32), engine.mask(hid))
        assert bool(table.accepting[s]) == engine.accepting(hid)
        for c, tok in enumerate(reps.tolist()):
            if tok < 0:
                continue
            if tok in eos:
                want = TERMINATED if engine.accepting(hid) else -1
            else:
                nh = engine.step(hid, tok)
                want = -1 if nh < 0 else table.state_of(nh)
                if nh >= 0 and nh not in seen:
                    seen.add(nh)
                    queue.append(nh)
            assert table.next_state[s, c] == want, (hid, tok)
    return seen


@pytest.mark.parametrize("spec", [JsonSchema(OPTIONAL), JsonSchema(OPTIONAL, whitespace="compact")],
                         ids=["bounded", "compact"])
def test_merged_states_stand_for_every_set(qwen2, spec):
    grammar = constrain.compile(spec, qwen2)
    table = DeviceMasks.build(grammar)
    assert table.resident, table.reason
    assert table.n_states < table.explored  # alike sets were merged
    seen = _engine_closure(grammar, table)
    assert len(seen) == table.explored - 1  # every set explored, TERMINATED aside
    assert len({table.state_of(h) for h in seen}) == table.n_states - 1


def test_maskbench_like_schema_follows_documents(qwen2):
    """A real function-call schema, closed: merged tables follow documents token by token
    (serialized as MaskBench does), and refuse what the host refuses."""
    grammar = constrain.compile(JsonSchema(AREA, extra_properties=False), qwen2)
    table = DeviceMasks.build(grammar)
    assert table.resident, table.reason
    assert table.n_states * 2 < table.explored
    docs = [{"shape": "rectangle", "dimensions": {"base": 10, "height": 5, "length": 8, "radius": 0, "width": 8}},
            {"shape": "circle", "dimensions": {"radius": 2.5}},
            {"shape": "square", "dimensions": {}},
            {"shape": "rectangle", "dimensions": {"base": 10, "width": None}},  # refused at null
            {"dimensions": {"base": 1}, "shape": "x"}]  # out of the schema's order: refused
    import json

    ended = 0
    for doc in docs:
        m = grammar.matcher()
        s = table.initial
        for tok in qwen2.longest_match(json.dumps(doc).encode()):
            assert np.array_equal(m.mask_words(), table.mask(s).view(np.uint32))
            assert table.state_of(m.state) == s
            nxt = table.step(s, tok)
            if not m.advance(tok):
                assert nxt == -1
                break
            s = nxt
            assert s == table.state_of(m.state)
        else:
            assert table.accepting[s] and m.is_accepting()
            assert table.step(s, qwen2.eos_token_ids[0]) == TERMINATED
            ended += 1
    assert ended == 3
    rng = random.Random(11)
    for _ in range(6):
        _random_walk(grammar, table, rng, 80)


def test_merge_keeps_terminated_apart_and_checks_the_partition():
    from constrain.device_masks import _is_congruence, _merge

    # classes a, b, EOS, d. 0 TERMINATED; 1 -a,d-> 2, -b-> 3; 2 and 3 alike (mask 1,
    # -a-> 4); 4 accepting, EOS -> 0; 5 (unreachable) has no move and an empty mask, as
    # TERMINATED has, and is kept apart from it
    rows = np.array([[-1, -1, -1, -1], [2, 3, -1, 2], [4, -1, -1, -1], [4, -1, -1, -1], [-1, -1, 0, -1],
                     [-1, -1, -1, -1]], dtype=np.int32)
    mask_of = np.array([0, 3, 1, 1, 2, 0], dtype=np.int32)
    accepting = np.array([False, False, False, False, True, False])
    nxt, class_of, part, rep = _merge(rows, np.array([0, 1, 2, 3, 1], dtype=np.int32), mask_of, accepting)
    assert part.tolist() == [0, 1, 2, 2, 3, 4]
    assert rep.tolist() == [0, 1, 2, 4, 5]
    # once 2 and 3 are one state, b and d lead alike from every state: one class
    assert nxt.tolist() == [[-1, -1, -1], [2, 2, -1], [3, -1, -1], [-1, -1, 0], [-1, -1, -1]]
    assert class_of.tolist() == [0, 1, 2, 1, 1]
    # a partition that merges states which differ is refused
    bad = np.array([0, 1, 1, 1, 2, 3], dtype=np.int64)
    assert not _is_congruence(rows, bad, np.array([0, 1, 4, 5]), mask_of, accepting)
    assert _is_congruence(rows, part, rep, mask_of, accepting)
