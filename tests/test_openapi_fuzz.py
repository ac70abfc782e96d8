"""Bad input from the OpenAPI document: schemathesis generates valid and invalid
requests for every operation and sends them, with a real token, to the real app
(in-process, over WSGI) holding seeded data. No answer may be a 5xx, every
answer's status is one the document declares for that operation, and every body
matches the schema declared for it (validated with jsonschema_rs, $ref resolved
against the document's components)."""
from __future__ import annotations

import io
import re

import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from PIL import Image
from schemathesis import GenerationMode

from tests.conftest import bearer

MAX_EXAMPLES = 8  # per operation, generation mode and backend: keeps the file under a minute

# WHEP's offer is SDP text, not JSON: a well-formed offer with no media, and texts that are not offers
schemathesis.openapi.media_type("application/sdp", st.sampled_from([
    b"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", b"not an offer", b"", b"v=0\r\n" + b"a=x\r\n" * 50]))


@pytest.fixture
def fuzz_ctx(app, make):
    from rooms import posts as room_posts

    org = make.org()
    owner = make.user(org=org, admin=True)
    member = make.user(org=org)
    room = make.room(owner, visibility="private", members=[member])
    open_room = make.room(owner, visibility="national")
    thread = make.thread(owner, room)
    buf = io.BytesIO()
    Image.new("RGB", (20, 20), (1, 2, 3)).save(buf, "PNG")
    reply, _ = room_posts.create_post(owner, thread.id, body="reply **one**", uploads=[("a.png", io.BytesIO(buf.getvalue()))])
    make.reply(member, thread, "nested", parent=reply)
    make.thread(owner, open_room)
    from rooms.ideas import services as ideas

    ideas.update_settings(owner, room.id, enabled=True, vote_budget=3)
    idea = ideas.create_idea(member, room.id, title="An idea", body="to vote on")
    ids = {"room_id": [room.id, open_room.id], "thread_id": [thread.id], "post_id": [reply.id],
           "user_id": [member.id, owner.id], "idea_id": [idea.id]}
    return {"headers": bearer(make.token(owner)), "ids": ids}


def _operations() -> list[tuple[str, str]]:
    from collab.openapi import document

    return [(path, method.upper()) for path, ops in document()["paths"].items() for method in ops
            if method in ("get", "post", "put", "patch", "delete")]


def _seeded(path: str, ids: dict) -> dict | None:
    """Path parameters naming real, readable objects (None when the path has none we know)."""
    names = re.findall(r"{(\w+)}", path)
    if not names or not all(n in ids for n in names):
        return None
    return {n: ids[n][0] for n in names}


_VALIDATORS: dict[tuple[str, str, str], object] = {}


def _response_validator(path: str, method: str, status: int):
    """A JSON Schema validator for the body the document declares for this answer ($ref resolved against the
    document's components; OpenAPI 3.1 schemas are JSON Schema 2020-12)."""
    from collab.openapi import document

    key = (path, method, str(status))
    if key not in _VALIDATORS:
        doc = document()
        declared = doc["paths"][path][method.lower()]["responses"].get(str(status))
        assert declared is not None, f"{method} {path}: status {status} is not in the OpenAPI document"
        content = declared.get("content") or {}
        if "application/json" in content:
            root = {**content["application/json"]["schema"], "components": doc["components"]}
            _VALIDATORS[key] = ("application/json", jsonschema_rs.Draft202012Validator(root))
        else:
            _VALIDATORS[key] = (next(iter(content), None), None)
    return _VALIDATORS[key]


def _check(case, response) -> None:
    where = (case.method, case.formatted_path, case.query, case.body, response.status_code, response.text[:500])
    assert response.status_code < 500, where
    media, validator = _response_validator(case.path, case.method, response.status_code)
    ctype = (response.headers.get("content-type") or response.headers.get("Content-Type") or [""])[0]
    if media is not None:
        assert ctype.split(";")[0].strip() == media, ("content type is not the documented one", media, ctype, where)
    if validator is not None:
        body = response.json()
        errors = [f"{'/'.join(map(str, e.instance_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(body)]
        assert not errors, ("answer breaks the documented schema", errors[:5], where)
    if response.status_code >= 400:
        err = response.json()["error"]
        assert isinstance(err["code"], str) and isinstance(err["message"], str) and err["message"], err


def test_api_never_answers_5xx(app, fuzz_ctx):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, headers=fuzz_ctx["headers"])
    headers = fuzz_ctx["headers"]
    operations = _operations()
    assert len(operations) >= 14
    failures = []
    for path, method in operations:
        operation = schema[path][method]
        plans = [(GenerationMode.POSITIVE, None), (GenerationMode.NEGATIVE, None)]
        seeded = _seeded(path, fuzz_ctx["ids"])
        if seeded:  # bodies and queries against objects that exist, not only against 404s
            plans = [(GenerationMode.POSITIVE, seeded), (GenerationMode.NEGATIVE, seeded),
                     (GenerationMode.NEGATIVE, None)]
        for mode, path_parameters in plans:
            strategy = operation.as_strategy(mode, path_parameters=path_parameters)

            # No shrinking: a failing answer is reported as generated, so a broken schema fails in seconds.
            @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
            @given(case=strategy)
            def run(case):
                _check(case, case.call(headers=headers))

            try:
                run()
            except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then report them all
                failures.append(f"{method} {path} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)


def _json_operations() -> list[tuple[str, str]]:
    from collab.openapi import document

    return [(path, method.upper()) for path, ops in document()["paths"].items() for method, op in ops.items()
            if "application/json" in (op.get("requestBody") or {}).get("content", {})]


def _hostile_bodies() -> dict[str, bytes]:
    deep = 5_000
    return {
        "nested array": b"[" * deep + b"]" * deep,
        "nested object": b'{"a":' * deep + b"1" + b"}" * deep,
        "nested in a field": b'{"body": ' + b"[" * deep + b"]" * deep + b', "title": "t", "name": "n"}',
        "long string": b'{"body": "' + b"x" * 3_000_000 + b'", "title": "t", "name": "n"}',
        "long array": b'{"user_ids": [' + b",".join([b"1"] * 600_000) + b"]}",
        "many keys": b"{" + b",".join(b'"k%d": 1' % i for i in range(200_000)) + b"}",
    }


def test_deeply_nested_and_very_large_json_is_a_clear_4xx_on_every_json_endpoint(app, fuzz_ctx):
    """Hostile JSON bodies (5,000 levels deep; megabytes long) get a documented 4xx with a message, never a 5xx,
    on every operation that takes JSON."""
    operations = _json_operations()
    assert len(operations) >= 10
    client = app.test_client()
    failures = []
    for path, method in operations:
        url = "/api/v1" + re.sub(r"{(\w+)}", lambda m: str(fuzz_ctx["ids"].get(m.group(1), [1])[0]), path)
        for what, body in _hostile_bodies().items():
            r = client.open(url, method=method, data=body, content_type="application/json",
                            headers=fuzz_ctx["headers"])
            documented = _response_validator(path, method, r.status_code)  # fails on an undocumented status
            if not 400 <= r.status_code < 500 or not r.is_json or not r.json["error"]["message"]:
                failures.append(f"{method} {path} {what}: {r.status_code} {r.get_data(as_text=True)[:200]}")
            assert documented
    assert not failures, "\n".join(failures)
