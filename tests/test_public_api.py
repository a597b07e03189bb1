import os
import constrain


def test_exports_are_exactly_all():
    public = {name for name in dir(constrain) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(constrain, name)).__name__ == "module"}
    assert public - modules == set(constrain.__all__)
    for name in constrain.__all__:
        assert hasattr(constrain, name)


def test_errors_share_a_root():
    for name in constrain.__all__:
        obj = getattr(constrain, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, constrain.ConstrainError)
    assert issubclass(constrain.SchemaError, ValueError)
    assert issubclass(constrain.RegexError, ValueError)


def test_import_is_light():
    import subprocess
    import sys

    code = (
        "import constrain, sys; print('torch' in sys.modules, 'transformers' in sys.modules, "
        "'constrain.frontends.json_schema' in sys.modules)"
    )
    env = dict(os.environ, CONSTRAIN_PREFETCH="0")  # (the prefetch thread imports in the background)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["False", "False", "False"]


def test_warmup_leaves_shared_caches_alone():
    from conftest import real_vocab
    from constrain import _caches, _warmup

    vocab = real_vocab("qwen2")
    constrain.compile(constrain.Regex("[0-9]{3}"), vocab, cache=False)
    spec_caches = [c for c in _caches.registry().values() if not c.spec_free]
    before = [c.keys() for c in spec_caches]
    _warmup._warmed = False
    constrain.warmup(vocab)
    assert _warmup._warmed
    assert [c.keys() for c in spec_caches] == before
    assert constrain.warmup(vocab) == 0.0  # once per process


def test_warmup_with_warm_kernels_still_makes_the_vocabulary_tables(monkeypatch):
    from constrain import _warmup
    from constrain.masking import unique

    vocab = constrain.Vocabulary([b"a", b"b", b"ab", b"</s>"], special=[3], eos_token_ids=[3])
    monkeypatch.setattr(_warmup, "_warmed", True)  # (kernels loaded before)
    assert vocab._sorted_bytes is None and unique._INDEX.get(vocab.fingerprint) is None
    assert constrain.warmup(vocab) > 0.0
    assert vocab._sorted_bytes == (b"a", b"ab", b"b") and vocab._by_bytes == {b"a": 0, b"b": 1, b"ab": 2}
    assert unique._INDEX.get(vocab.fingerprint) is not None
    assert constrain.warmup(vocab) == 0.0


def test_vocabulary_tables_are_made_once_and_say_so():
    vocab = constrain.Vocabulary([b"a", b"b", b"ab", b"</s>"], special=[3], eos_token_ids=[3])
    assert vocab.prepare_tables() is True
    assert vocab.prepare_tables() is False
    assert vocab.token_of(b"ab") == 2 and vocab.extends_token(b"a") and not vocab.extends_token(b"ab")
    assert vocab.token_of(b"</s>") is None  # (special: not usable)
    fresh = constrain.Vocabulary([b"a", b"b"])
    fresh.token_of(b"a")  # one table made on first use, the other still missing
    assert fresh.prepare_tables() is True and fresh.prepare_tables() is False


def test_warmup_with_a_vocabulary_that_cannot_spell_its_specs():
    from constrain import _warmup

    vocab = constrain.Vocabulary([b"a", b"b", b"</s>"], special=[2], eos_token_ids=[2])
    _warmup._warmed = False
    constrain.warmup(vocab)
    assert _warmup._warmed
    g = constrain.compile(constrain.Regex("(ab)+"), vocab, cache=False)
    m = g.matcher()
    assert m.advance(0) and m.advance(1) and m.is_accepting()


def test_all_lists_the_public_names():
    assert sorted(constrain.__all__) == [
        "AssetError", "CompileLimitError", "CompiledGrammar", "ConstrainError", "DeviceLimits", "DeviceMasks",
        "DeviceStepper", "GBNF", "Grammar", "GrammarError",
        "JsonSchema", "LLM", "Lark", "Limits", "Matcher", "MatcherError", "Regex", "RegexError", "SchemaError", "SchemaReport",
        "SpecError", "UnsatisfiableError", "Vocabulary", "VocabularyError", "allocate_bitmask", "apply_bitmask",
        "clear_caches", "compile", "fill_bitmasks", "warmup",
    ]


def test_grammar_ir_and_schema_report_are_the_exported_ones():
    from constrain.frontends.json_schema import SchemaReport
    from constrain.grammar.ir import Grammar, GrammarBuilder, RegexTerm

    assert constrain.Grammar is Grammar and constrain.SchemaReport is SchemaReport
    assert constrain.Regex is not RegexTerm  # the spec, not the IR's terminal
    vocab = constrain.Vocabulary([b"a", b"b", b'"', b"</s>"], special=[3], eos_token_ids=[3])
    b = GrammarBuilder()
    b.rule("start", [(b.regex("a+"), b.literal("b"))])
    m = constrain.compile(b.build("start"), vocab, cache=False).matcher()
    assert m.advance(0) and m.advance(1) and m.is_accepting()
    report = constrain.compile(constrain.JsonSchema({"enum": ["a"]}), vocab, cache=False).report
    assert isinstance(report, constrain.SchemaReport)
