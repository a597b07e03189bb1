"""Kernels run as Python while an empty kernel cache fills in the background: the same
masks as compiled kernels, before, across and after the switch (constrain._kernels)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import constrain
from constrain import _kernels
from constrain._caches import numba_cache_dir

# Masks along documents of a JSON Schema, a regex and a Lark grammar, hashed; with
# "switch", kernels change from Python to compiled halfway through each document, and
# the grammars compiled after the switch are new ones.
SCRIPT = r"""
import hashlib, json, sys
import constrain
from constrain import _kernels, assets

how = sys.argv[1]
tok = assets.smollm2_tokenizer()
vocab = constrain.Vocabulary.from_tokenizer(tok)
schema = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "role": {"enum": ["wizard", "knight", "thief"]},
        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "pos": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}}},
    },
    "required": ["name", "age"],
    "additionalProperties": {"type": "boolean"},
}
cases = [
    (schema, json.dumps({"name": "Zed \u00e9", "age": 41, "role": "thief", "tags": ["a", "bc"],
                         "pos": {"x": -1.5e3, "y": 2}, "extra": True})),
    (constrain.Regex(r"[a-z]{2,8}@(foo|bar)\.(com|org)( [0-9]{1,3})?"), "ab@bar.org 42"),
    (constrain.Lark('''
        ?start: sum
        ?sum: product | sum ("+"|"-") product
        ?product: atom | product ("*"|"/") atom
        ?atom: NUMBER | "(" sum ")"
        %import common.NUMBER
        %ignore " "
    '''), "(1 + 2.5) * 3 - 4 / (5+6)"),
]
digest = hashlib.sha256()
for spec, text in cases:
    g = constrain.compile(spec, vocab)
    m = g.matcher()
    ids = tok.encode(text, add_special_tokens=False)
    for k, i in enumerate(ids):
        if how == "switch" and k == len(ids) // 2:
            _kernels.use_compiled()
        digest.update(m.mask_words().tobytes())
        assert m.advance(i), (text, k)
    digest.update(m.mask_words().tobytes())
    digest.update(bytes([m.is_accepting()]))
print(_kernels.mode(), digest.hexdigest())
"""


def _run(env: dict, *args: str, timeout: float = 300) -> str:
    full = dict(os.environ, **env)
    out = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", *args], capture_output=True,
                         text=True, env=full, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.fixture(scope="module")
def compiled_digest():
    mode, digest = _run({"CONSTRAIN_KERNELS": "compiled", "NUMBA_CACHE_DIR": numba_cache_dir()},
                        SCRIPT, "plain").split()
    assert mode == "compiled"
    return digest


def test_python_kernels_give_the_same_masks(compiled_digest):
    # (and never warn: numpy's notes on int64 arithmetic that wraps are silenced)
    mode, digest = _run({"CONSTRAIN_KERNELS": "python", "NUMBA_CACHE_DIR": numba_cache_dir()},
                        SCRIPT, "plain").split()
    assert mode == "python"
    assert digest == compiled_digest


def test_switching_midway_keeps_every_mask(compiled_digest):
    # what Python kernels built (lexer products, hash tables, walks) goes on compiled
    mode, digest = _run({"CONSTRAIN_KERNELS": "python", "NUMBA_CACHE_DIR": numba_cache_dir()},
                        SCRIPT, "switch").split()
    assert mode == "compiled"
    assert digest == compiled_digest


def test_a_switch_reaches_every_module_that_holds_a_kernel():
    code = (
        "import sys, constrain, constrain.serving\n"
        "from constrain import _kernels\n"
        "pyfuncs = {id(f): f for f, _ in _kernels._kernels.values()}\n"
        "def held():\n"
        "    return sorted(f'{n}.{a}' for n, m in list(sys.modules.items()) if n.startswith('constrain')\n"
        "                  for a, v in vars(m).items() if v is not None and pyfuncs.get(id(v)) is v)\n"
        "before = held()\n"
        "_kernels.use_compiled()\n"
        "print(len(before), len(held()))\n"
    )
    before, after = map(int, _run({"CONSTRAIN_KERNELS": "python"}, code).split())
    assert before > 50 and after == 0


def test_the_kernel_files_are_listed():
    root = Path(constrain.__file__).parent
    holding = sorted(
        str(p.relative_to(root)) for p in root.rglob("*.py")
        if re.search(r"^from \.+_kernels import njit", p.read_text(), re.M)
    )
    assert holding == sorted(_kernels.KERNEL_FILES)
    assert not any(re.search(r"^from numba import .*njit", p.read_text(), re.M) for p in root.rglob("*.py"))


def _drop_markers(cache: Path) -> None:
    """Remove the copy's ready markers, and a warm-up lock copied from a warm-up running
    in the original cache (it names a process of that cache, not of the copy)."""
    for marker in [*cache.glob("constrain-*.ready"), *cache.glob("constrain-warmup.lock")]:
        marker.unlink()


def _cold_cache(tmp_path) -> tuple[dict, Path]:
    """The environment of a process in ``auto`` mode whose kernel cache lacks the marker
    of a complete warm-up (a copy of this process's cache, whose kernels a background
    warm-up then loads rather than compiles: seconds), and that cache."""
    cache = tmp_path / "numba"
    shutil.copytree(numba_cache_dir(), cache)
    _drop_markers(cache)
    env = {"CONSTRAIN_KERNELS": "auto", "NUMBA_CACHE_DIR": str(cache), "CONSTRAIN_CACHE_DIR": str(tmp_path / "c")}
    return env, cache


def test_a_cold_cache_starts_interpreted_and_switches_when_compiled(tmp_path, compiled_digest):
    env, _ = _cold_cache(tmp_path)
    code = "from constrain import _kernels\nfirst = _kernels.mode()\n" + SCRIPT.replace(
        "print(_kernels.mode(), digest.hexdigest())", "") + (
        "import os, time\n"
        "lock = os.path.join(os.environ['NUMBA_CACHE_DIR'], 'constrain-warmup.lock')\n"
        "started = os.path.exists(lock) or os.path.exists(_kernels.ready_marker())\n"
        "_kernels._watcher.join(240)\n"
        "g = constrain.compile(schema, vocab)\n"  # a grammar of the Python days, compiled kernels now
        "m = g.matcher()\n"
        "ok = all(m.advance(i) for i in tok.encode(cases[0][1], add_special_tokens=False)) and m.is_accepting()\n"
        "print(first, started, _kernels.mode(), os.path.exists(_kernels.ready_marker()), ok, digest.hexdigest())\n"
    )
    first, started, mode, marked, ok, digest = _run(env, code, "plain", timeout=400).split()
    assert (first, started, mode, marked, ok) == ("auto-python", "True", "compiled", "True", "True")
    assert digest == compiled_digest
    # the next process finds the cache complete: compiled from the start, nothing started
    code = "import constrain; from constrain import _kernels; print(_kernels.mode())"
    assert _run(env, code).strip() == "compiled"


def test_warmup_in_an_interpreting_process_compiles(tmp_path):
    code = ("import constrain; from constrain import _kernels; m = _kernels.mode(); constrain.warmup(); "
            "print(m, _kernels.mode())")
    assert _run({"CONSTRAIN_KERNELS": "python"}, code).split() == ["python", "compiled"]


def test_a_forked_child_waits_for_the_background_compile_too(tmp_path):
    env, _ = _cold_cache(tmp_path)
    code = (
        "import os, constrain\n"
        "from constrain import _kernels\n"
        "constrain.Vocabulary([bytes([b]) for b in range(256)])\n"  # starts the background compile
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    if _kernels._watcher is not None:\n"
        "        _kernels._watcher.join(240)\n"
        "    os._exit(0 if _kernels.mode() == 'compiled' else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "_kernels._watcher.join(240)\n"
        "print(os.waitstatus_to_exitcode(status), _kernels.mode())\n"
    )
    assert _run(env, code, timeout=400).split() == ["0", "compiled"]


def test_a_cache_nothing_can_be_written_to_compiles_here(tmp_path):
    # (the lock cannot be made: no background compile, kernels compiled in this process)
    env, cache = _cold_cache(tmp_path)
    code = (
        "import constrain\n"
        "from constrain import _kernels\n"
        "_kernels._claim = lambda path: 'none'\n"
        "constrain.Vocabulary([bytes([b]) for b in range(256)])\n"
        "_kernels._watcher.join(60)\n"
        "print(_kernels.mode())\n"
    )
    assert _run(env, code).strip() == "compiled"
    assert not (cache / "constrain-warmup.lock").exists()


def test_claiming_the_warm_up(tmp_path):
    lock = str(tmp_path / "sub" / "constrain-warmup.lock")
    assert _kernels._claim(lock) == "ours"  # (its directory made)
    assert _kernels._claim(lock) == "theirs"  # this process is alive
    with open(lock, "w") as f:
        f.write("999999999")  # a process that is gone
    assert _kernels._claim(lock) == "ours"


def test_out_of_time_while_interpreted_compiles_again_compiled(tmp_path):
    env, cache = _cold_cache(tmp_path)
    code = (
        "import constrain\n"
        "from constrain import _kernels, specs\n"
        "from constrain.limits import limit_error\n"
        "vocab = constrain.Vocabulary([bytes([b]) for b in range(256)], eos_token_ids=[0])\n"
        "real, modes = specs._compile, []\n"
        "def timed(*args):\n"  # the first compile runs out of time while interpreted
        "    modes.append(_kernels.mode())\n"
        "    if len(modes) == 1:\n"
        "        raise limit_error('too slow', 'max_regex_seconds', 10.0)\n"
        "    return real(*args)\n"
        "specs._compile = timed\n"
        "g = constrain.compile(constrain.Regex('[a-z]+'), vocab)\n"
        "print(*modes, g.matcher().advance(ord('a')))\n"
    )
    assert _run(env, code, timeout=400).split() == ["auto-python", "compiled", "True"]
    # a limit that is not a time limit is the spec's own: raised at once
    code = ("import constrain, pytest\n"
            "from constrain import _kernels\n"
            "_kernels._claim = lambda path: 'theirs'\n"  # (as if another process were compiling: nothing started)
            "vocab = constrain.Vocabulary([bytes([b]) for b in range(256)], eos_token_ids=[0])\n"
            "with pytest.raises(constrain.CompileLimitError):\n"
            "    constrain.compile(constrain.Regex('[a-z]{1,5000}'), vocab, limits=constrain.Limits(max_regex_states=10))\n"
            "print(_kernels.mode())\n")
    _drop_markers(cache)
    assert _run(env, code).strip() == "auto-python"
