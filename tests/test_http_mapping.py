"""The HTTP binding's wire mapping (draft §12.2): status codes, problem details, media types."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_recovery._errors import ErrorCode, RemoteProtocolError
from agent_recovery._messages import Ack, Error
from agent_recovery._model import Owner
from agent_recovery._wire import encode
from agent_recovery.bindings.http import (
    DEFAULT_PATH,
    DEFAULT_RETRY_AFTER,
    JWS_MEDIA_TYPE,
    MAX_BODY_SIZE,
    PROBLEM_MEDIA_TYPE,
    RETRY_AFTER_CODES,
    STATUS_FOR_CODE,
    DeliveryError,
    RecoveryClient,
    answer_for_refusal,
    answer_for_reply,
    code_for_type,
    is_jws_media_type,
    parse_problem,
    parse_retry_after,
    peek,
    read_response,
    retry_after_seconds,
)
from agent_recovery.bindings.http._client import same_host_or_https
from agent_recovery.bindings.http._mapping import method_not_allowed, unsupported_media_type
from agent_recovery.security import MAX_JWS_SIZE, Signer, generate_private_jwk
from agent_recovery.security.keys import Algorithm

SIGNER = Signer.from_jwk(
    dict(generate_private_jwk(kid="k-a", owner="spiffe://t/a", alg=Algorithm.EDDSA))
)
OWNER = Owner(recovery="c-7", created=1_795_456_800_000)


def _signed(message: Ack | Error) -> bytes:
    return SIGNER.sign(encode(message))


def _error(code: ErrorCode, **kw: object) -> Error:
    return Error(
        id="e-1",
        sender="spiffe://t/a",
        recipient="spiffe://t/b",
        iat=1_795_456_800_000,
        reply_to="m-1",
        code=code.value,
        **kw,  # type: ignore[arg-type]
    )


def test_every_registered_code_has_a_status_and_a_type_uri() -> None:
    assert set(STATUS_FOR_CODE) == set(ErrorCode)
    for code, status in STATUS_FOR_CODE.items():
        assert 400 <= status <= 599
        assert code_for_type(code.type_uri) is code
        assert code.type_uri == f"urn:ietf:params:agent-recovery:error:{code.value}"


def test_the_table_says_what_the_draft_says() -> None:
    # draft §12.2: the distinctions a generic HTTP client acts on.
    assert STATUS_FOR_CODE[ErrorCode.TOO_LARGE] == 413
    assert STATUS_FOR_CODE[ErrorCode.RATE_LIMITED] == 429
    assert STATUS_FOR_CODE[ErrorCode.OVERLOADED] == 503
    assert STATUS_FOR_CODE[ErrorCode.UNAUTHORIZED] == 403
    assert STATUS_FOR_CODE[ErrorCode.INTERNAL] == 500
    assert STATUS_FOR_CODE[ErrorCode.BUSY] == 409
    assert {ErrorCode.RATE_LIMITED, ErrorCode.OVERLOADED, ErrorCode.BUSY} == RETRY_AFTER_CODES


def test_the_body_limit_is_the_endpoint_limit() -> None:
    assert MAX_BODY_SIZE == MAX_JWS_SIZE


@pytest.mark.parametrize("code", list(ErrorCode))
def test_a_refusal_is_a_problem_document_of_rfc_9457(code: ErrorCode) -> None:
    answer = answer_for_refusal(code, "why", owner=OWNER)
    assert answer.content_type == PROBLEM_MEDIA_TYPE
    assert answer.status == STATUS_FOR_CODE[code]
    doc = json.loads(answer.body)
    assert doc["type"] == code.type_uri
    assert doc["status"] == answer.status
    assert doc["title"] == code.description
    assert doc["detail"] == "why"
    assert doc["code"] == code.value
    headers = dict(answer.headers)
    if code in RETRY_AFTER_CODES:
        assert headers["Retry-After"] == str(DEFAULT_RETRY_AFTER)
        assert doc["retry_after"] == DEFAULT_RETRY_AFTER
    else:
        assert "Retry-After" not in headers
        assert "retry_after" not in doc
    # The owner goes only with busy (draft §8.5).
    assert ("owner" in doc) is (code is ErrorCode.BUSY)


def test_busy_names_the_owner_and_round_trips() -> None:
    answer = answer_for_refusal(ErrorCode.BUSY, owner=OWNER, retry_after=7)
    doc = json.loads(answer.body)
    assert doc["owner"] == {"recovery": "c-7", "created": "2026-11-23T18:00:00.000Z"}
    problem = parse_problem(answer.body, answer.status, dict(answer.headers)["Retry-After"])
    assert problem.code is ErrorCode.BUSY
    assert problem.owner == OWNER
    assert problem.retry_after == 7


def test_retry_after_is_bounded() -> None:
    assert dict(answer_for_refusal(ErrorCode.RATE_LIMITED, retry_after=0).headers) == {
        "Retry-After": "1"
    }
    huge = answer_for_refusal(ErrorCode.OVERLOADED, retry_after=10**9)
    assert dict(huge.headers)["Retry-After"] == "86400"
    assert retry_after_seconds(1) == 1
    assert retry_after_seconds(1001) == 2
    assert retry_after_seconds(0) == 1


def test_an_accepted_message_gets_its_signed_reply_or_204() -> None:
    assert answer_for_reply(None).status == 204
    ack = _signed(
        Ack(id="a-1", sender="spiffe://t/a", recipient="spiffe://t/b", iat=0, reply_to="m-1")
    )
    answer = answer_for_reply(ack)
    assert (answer.status, answer.content_type, answer.body) == (200, JWS_MEDIA_TYPE, ack)


def test_a_signed_error_reply_becomes_a_problem_carrying_it() -> None:
    token = _signed(_error(ErrorCode.BUSY, owner=OWNER, detail="held"))
    answer = answer_for_reply(token)
    assert answer.status == 409
    problem = parse_problem(answer.body, answer.status)
    assert problem.code is ErrorCode.BUSY
    assert problem.owner == OWNER
    assert problem.signed_error == token
    assert problem.detail == "held"


def test_an_unregistered_code_counts_as_internal() -> None:
    token = _signed(
        Error(
            id="e-2",
            sender="spiffe://t/a",
            recipient="spiffe://t/b",
            iat=0,
            reply_to="m-1",
            code="x-private-code",
        )
    )
    assert answer_for_reply(token).status == 500


def test_media_types() -> None:
    assert is_jws_media_type(JWS_MEDIA_TYPE)
    assert is_jws_media_type("Application/Agent-Recovery+JWS; charset=us-ascii")
    assert not is_jws_media_type(None)
    assert not is_jws_media_type("application/json")
    assert not is_jws_media_type("application/agent-recovery+json")
    answer = unsupported_media_type("text/plain")
    assert answer.status == 415
    assert dict(answer.headers)["Accept-Post"] == JWS_MEDIA_TYPE
    assert json.loads(answer.body)["type"] == ErrorCode.MALFORMED.type_uri
    assert dict(method_not_allowed().headers)["Allow"] == "POST"
    assert DEFAULT_PATH == "/.well-known/agent-recovery"


def test_peek_reads_a_jws_payload_and_refuses_what_is_not_one() -> None:
    ack = Ack(id="a-1", sender="spiffe://t/a", recipient="spiffe://t/b", iat=0, reply_to="m-1")
    assert peek(_signed(ack)) == ack
    with pytest.raises(RemoteProtocolError) as info:
        peek(b"not a jws")
    assert info.value.code is ErrorCode.UNSIGNED
    with pytest.raises(RemoteProtocolError) as info:
        peek(b"a.!!!.c")
    assert info.value.code is ErrorCode.MALFORMED


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0", 0), (" 12 ", 12), ("99999999", 86_400), ("-1", None), ("1.5", None), (None, None)],
)
def test_retry_after_header(value: str | None, expected: int | None) -> None:
    assert parse_retry_after(value) == expected
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None


def test_parse_problem_is_lenient() -> None:
    # RFC 9457 §3: unknown members are ignored; bad members are treated as absent.
    doc = {"type": 5, "title": ["x"], "owner": "c-1", "signed_error": 3, "extra": {}}
    problem = parse_problem(json.dumps(doc).encode(), 409)
    assert problem.type == "about:blank" and problem.code is None
    assert problem.owner is None and problem.signed_error is None
    page = parse_problem(b"<html>Bad Gateway</html>", 502)
    assert (page.status, page.code, page.title) == (502, None, "")
    bad_owner = {"type": ErrorCode.BUSY.type_uri, "owner": {"recovery": "", "created": "x"}}
    assert parse_problem(json.dumps(bad_owner).encode(), 409).owner is None


@given(st.binary(max_size=512), st.integers(min_value=400, max_value=599))
def test_parse_problem_never_raises(body: bytes, status: int) -> None:
    problem = parse_problem(body, status)
    assert problem.status == status


def test_read_response_classifies_answers() -> None:
    ack = _signed(
        Ack(id="a-1", sender="spiffe://t/a", recipient="spiffe://t/b", iat=0, reply_to="m-1")
    )
    assert read_response(200, JWS_MEDIA_TYPE, ack).reply == ack
    assert read_response(204, None, b"").reply is None
    signed_error = _signed(_error(ErrorCode.UNAUTHORIZED))
    refusal = answer_for_reply(signed_error)
    delivery = read_response(refusal.status, refusal.content_type, refusal.body)
    assert delivery.reply == signed_error and delivery.problem is not None
    unsigned = answer_for_refusal(ErrorCode.UNSIGNED, "no signature")
    with pytest.raises(DeliveryError) as info:
        read_response(unsigned.status, unsigned.content_type, unsigned.body)
    assert info.value.code is ErrorCode.UNSIGNED
    with pytest.raises(DeliveryError):
        read_response(200, "text/html", b"<html/>")
    with pytest.raises(DeliveryError):
        read_response(302, None, b"")


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://agent.example/.well-known/agent-recovery", True),
        ("http://127.0.0.1:8400/.well-known/agent-recovery", True),
        ("http://127.8.9.10/.well-known/agent-recovery", True),
        ("http://[::1]:8400/.well-known/agent-recovery", True),
        ("http://localhost:8400/.well-known/agent-recovery", True),
        ("http://192.0.2.7:8400/.well-known/agent-recovery", False),
        ("http://agent.example/.well-known/agent-recovery", False),
        ("ftp://127.0.0.1/x", False),
        ("not a url", False),
    ],
)
def test_http_only_between_endpoints_on_the_same_host(url: str, allowed: bool) -> None:
    # draft §12.2: the "http" scheme MUST NOT be used except on the same host.
    assert same_host_or_https(url) is allowed
    if allowed:
        return

    async def main() -> None:
        async with RecoveryClient(timeout=0.5) as client:
            with pytest.raises(DeliveryError, match="loopback"):
                await client.send(url, b"a.b.c")

    asyncio.run(main())
