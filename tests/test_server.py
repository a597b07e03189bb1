"""The OpenAI-compatible server, end to end: the bundled model behind uvicorn, driven by
the real ``openai`` client (and raw ``httpx`` for what the client will not send)."""

import json
import socket
import threading
import time

import pytest

openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")
jsonschema = pytest.importorskip("jsonschema")

from constrain.serving import LLM  # noqa: E402
from constrain.serving.server import create_app  # noqa: E402

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}
PERSON_FORMAT = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}}
ASK = [{"role": "user", "content": "Describe a person as JSON."}]
MAX_BODY = 1 << 20


@pytest.fixture(scope="module")
def server():
    llm = LLM.bundled(max_batch_size=8)
    llm.start()
    app = create_app(llm, model_name="test-model", max_body_bytes=MAX_BODY)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    yield llm, base
    srv.should_exit = True
    thread.join(timeout=10)
    llm.shutdown()
    sock.close()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server[1]}/v1", api_key="x", max_retries=0, timeout=60)


def wait_idle(llm, seconds=5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not llm.engine.running and not llm.engine.waiting:
            return True
        time.sleep(0.05)
    return False


def test_models(client):
    assert [m.id for m in client.models.list().data] == ["test-model"]


def test_chat_completion(client):
    r = client.chat.completions.create(model="whatever", messages=ASK, max_tokens=8, temperature=0)
    assert r.object == "chat.completion" and r.model == "test-model"
    choice = r.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert 0 < r.usage.completion_tokens <= 8
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.usage.prompt_tokens_details.cached_tokens >= 0


def test_json_schema_strict(client):
    r = client.chat.completions.create(model="m", messages=ASK, max_tokens=48, temperature=0,
                                       response_format=PERSON_FORMAT)
    value = json.loads(r.choices[0].message.content)
    jsonschema.validate(value, PERSON)
    assert set(value) <= {"name", "age"}


@pytest.mark.parametrize("items", [{"type": "string"}, {"type": "integer"},
                                   {"type": "object", "properties": {"day": {"type": "integer"}},
                                    "required": ["day"], "additionalProperties": False}])
def test_unique_items_under_every_budget(client, items):
    # uniqueItems over items of many values is checked while matching; the server always
    # sets a budget
    schema = {"type": "object", "properties": {"tags": {"type": "array", "items": items, "uniqueItems": True,
                                                        "minItems": 2}},
              "required": ["tags"], "additionalProperties": False}
    fmt = {"type": "json_schema", "json_schema": {"name": "tags", "schema": schema}}
    ask = [{"role": "user", "content": "Give three tags for a post about baking bread, as JSON."}]
    for budget in (18, 22, 28, 40):
        r = client.chat.completions.create(model="m", messages=ask, max_tokens=budget, temperature=1.0, seed=3,
                                           response_format=fmt)
        assert r.choices[0].finish_reason == "stop" and r.usage.completion_tokens <= budget
        value = json.loads(r.choices[0].message.content)
        jsonschema.validate(value, schema)


def test_json_object(client):
    r = client.chat.completions.create(model="m", messages=ASK, max_tokens=24, temperature=0,
                                       response_format={"type": "json_object"})
    if r.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(r.choices[0].message.content), dict)
    else:  # cut by max_tokens: still a prefix of an object
        assert r.choices[0].message.content.lstrip().startswith("{")


def test_regex_extension_and_completions(client):
    r = client.chat.completions.create(model="m", messages=ASK, max_tokens=8, extra_body={"regex": "[0-9]{3}"})
    assert len(r.choices[0].message.content) == 3 and r.choices[0].message.content.isdigit()
    r = client.completions.create(model="m", prompt="Yes or no?", max_tokens=4,
                                  extra_body={"grammar": 'root ::= "yes" | "no"', "grammar_syntax": "gbnf"})
    assert r.object == "text_completion" and r.choices[0].text in ("yes", "no")


def test_streaming_with_usage(client):
    stream = client.chat.completions.create(model="m", messages=ASK, max_tokens=48, temperature=0, stream=True,
                                            stream_options={"include_usage": True}, response_format=PERSON_FORMAT)
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    jsonschema.validate(json.loads(text), PERSON)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_concurrent_requests(client):
    results: list = [None] * 8

    def ask(i: int) -> None:
        messages = [{"role": "user", "content": f"Describe person number {i} as JSON."}]
        r = client.chat.completions.create(model="m", messages=messages, max_tokens=40, temperature=0.7, seed=i,
                                           response_format=PERSON_FORMAT)
        results[i] = r.choices[0].message.content

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for text in results:
        jsonschema.validate(json.loads(text), PERSON)


def test_bad_schema_is_400_naming_the_problem(client):
    bad = {"type": "json_schema",
           "json_schema": {"name": "x", "schema": {"type": "object", "properties": {"a": {"type": "strnig"}}}}}
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="m", messages=ASK, response_format=bad)
    assert "strnig" in err.value.message and "/properties/a" in err.value.message
    assert err.value.body["param"] == "response_format"


@pytest.mark.parametrize("extra, needle", [
    ({"regex": "[0-9", "temperature": 0}, "position"),
    ({"grammar": "start: foo"}, "foo"),
    ({"regex": "[0-9]{40}", "max_tokens": 3}, "max_tokens"),
    ({"regex": "a", "grammar": 'start: "a"'}, "one constraint"),
    ({"n": 2}, "n=2"),
    ({"max_tokens": "5"}, "max_tokens"),
    ({"temperature": 7}, "temperature"),
    ({"logprobs": True}, "logprobs"),
])
def test_bad_requests_are_400(client, extra, needle):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="m", messages=ASK, extra_body=extra)
    assert needle in err.value.message


def test_malformed_and_oversize_bodies(server):
    base = server[1]
    url = f"{base}/v1/chat/completions"
    r = httpx.post(url, content=b'{"messages": [', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    r = httpx.post(url, json={"messages": "hello"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    r = httpx.post(url, json={"messages": ASK, "padding": "x" * MAX_BODY})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    # Without a Content-Length (chunked): the bytes read are counted.
    r = httpx.post(url, content=iter([b'{"padding": "', b"x" * MAX_BODY, b'"}']))
    assert r.status_code == 413
    assert httpx.get(f"{base}/health").json() == {"status": "ok"}


def test_disconnect_cancels_the_request(server, client):
    llm, base = server
    # 300 lowercase letters, no EOS before them: long enough to outlast the test's wait.
    long = {"regex": "[a-z]{300}"}
    stream = client.chat.completions.create(model="m", messages=ASK, max_tokens=320, stream=True, extra_body=long)
    next(iter(stream))
    # The event loop stays free while the engine works.
    t0 = time.perf_counter()
    assert httpx.get(f"{base}/health").status_code == 200
    assert time.perf_counter() - t0 < 2.0
    stream.close()
    assert wait_idle(llm), "the streamed request was not cancelled"
    # Not streaming: the client gives up (its read times out) and closes the connection.
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{base}/v1/chat/completions", json={"messages": ASK, "max_tokens": 320, **long}, timeout=1.0)
    assert wait_idle(llm), "the request was not cancelled"
    r = client.chat.completions.create(model="m", messages=ASK, max_tokens=4, temperature=0)
    assert r.choices[0].message.content
