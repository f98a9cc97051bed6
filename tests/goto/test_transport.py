"""The retry / refresh / backoff seam, with httpx.MockTransport standing in for GoTo (the only
tests that do: everything else talks to the emulator over HTTP)."""

from __future__ import annotations

import itertools

import httpx
import pytest

from shared.goto.errors import AuthError, BadRequest, Conflict, Op, RateLimited, TransientError
from shared.goto.ratelimit import TokenBucket
from shared.goto.transport import RetryPolicy, Transport, encode_query

OP = Op("read user", "1", anchored=True)


class Tokens:
    def __init__(self) -> None:
        self.calls: list[bool] = []

    async def get_token(self, force_refresh: bool = False) -> str:
        self.calls.append(force_refresh)
        return f"token-{len(self.calls)}"


def make(answers: list[httpx.Response], **kw):
    seen: list[httpx.Request] = []
    sleeps: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    tokens = Tokens()
    t = Transport(
        "https://goto.example/identity/v1",
        tokens,
        rate_limit=None,
        http_transport=httpx.MockTransport(handler),
        sleep=sleep,
        rng=lambda: 1.0,
        backoff_base=0.1,
        backoff_cap=1.0,
        **kw,
    )
    return t, seen, sleeps, tokens


# --- backoff schedule (pure)


def test_backoff_is_exponential_full_jitter_capped():
    policy = RetryPolicy(max_attempts=6, backoff_base=0.5, backoff_cap=3.0)
    assert [policy.delay(n, None, lambda: 1.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.delay(3, None, lambda: 0.25) == 0.5  # full jitter: uniform in [0, ceiling]
    assert policy.delay(6, None, lambda: 1.0) is None  # attempts exhausted


def test_retry_after_wins_over_backoff_but_is_bounded():
    policy = RetryPolicy(max_attempts=5, backoff_base=0.5, backoff_cap=3.0, max_retry_after=60)
    assert policy.delay(1, 7.0, lambda: 1.0) == 7.0
    assert policy.delay(1, 0.0, lambda: 1.0) == 0.0
    assert policy.delay(1, 61.0, lambda: 1.0) is None  # not slept through: the caller parks the object


# --- retries


async def test_429_with_retry_after_seconds_then_success():
    t, _seen, sleeps, _ = make([httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(200, json={})])
    await t.request("GET", "/Users/1", OP)
    assert sleeps == [2.0]
    assert (t.stats.requests, t.stats.retries, t.stats.throttled) == (2, 1, 1)


async def test_429_with_retry_after_http_date_then_success():
    date = "Wed, 21 Oct 2099 07:28:00 GMT"  # far future: longer than max_retry_after
    t, _, sleeps, _ = make([httpx.Response(429, headers={"Retry-After": date})], max_retry_after=30)
    with pytest.raises(RateLimited) as info:
        await t.request("GET", "/Users/1", OP)
    assert info.value.retryable
    assert info.value.retry_after > 30
    assert sleeps == []


async def test_429_without_retry_after_backs_off_exponentially_until_attempts_run_out():
    t, seen, sleeps, _ = make([httpx.Response(429) for _ in range(4)], max_attempts=4)
    with pytest.raises(RateLimited) as info:
        await t.request("GET", "/Users/1", OP)
    assert sleeps == [0.1, 0.2, 0.4]
    assert len(seen) == 4
    assert info.value.code == "TooManyRequests"


async def test_5xx_and_connection_errors_are_retried():
    answers: list = [
        httpx.Response(503),
        httpx.Response(502),
        httpx.Response(504),
        httpx.Response(200, json={"id": "1"}),
    ]
    t, _seen, sleeps, _ = make(answers)
    response = await t.request("GET", "/Users/1", OP)
    assert response.json() == {"id": "1"}
    assert len(sleeps) == 3
    assert t.stats.transient == 3


async def test_timeouts_are_retried_then_raised_as_timeout():
    def handler(request):
        raise httpx.ReadTimeout("slow", request=request)

    sleeps: list[float] = []

    async def sleep(s):
        sleeps.append(s)

    t = Transport(
        "https://x", Tokens(), rate_limit=None, http_transport=httpx.MockTransport(handler), sleep=sleep, max_attempts=3
    )
    with pytest.raises(TransientError) as info:
        await t.request("GET", "/Users/1", OP)
    assert info.value.code == "Timeout"
    assert len(sleeps) == 2


@pytest.mark.parametrize(("status", "cls"), [(400, BadRequest), (409, Conflict)])
async def test_400_and_409_are_never_retried(status, cls):
    t, seen, sleeps, _ = make([httpx.Response(status, json={"code": "x"})])
    with pytest.raises(cls):
        await t.request("POST", "/Users", Op("create user", "a@contoso.com"), json={})
    assert len(seen) == 1
    assert sleeps == []


# --- tokens


@pytest.mark.parametrize("status", [401, 403])
async def test_bad_token_refreshes_once_then_raises_auth_error(status):
    t, seen, sleeps, tokens = make([httpx.Response(status), httpx.Response(status)])
    with pytest.raises(AuthError):
        await t.request("GET", "/Users/1", OP)
    assert tokens.calls == [False, True]
    assert [r.headers["Authorization"] for r in seen] == ["Bearer token-1", "Bearer token-2"]
    assert sleeps == []
    assert t.stats.token_refreshes == 1


async def test_refreshed_token_succeeds():
    t, _seen, _, tokens = make([httpx.Response(403), httpx.Response(200, json={})])
    await t.request("GET", "/Users/1", OP)
    assert tokens.calls == [False, True]


async def test_the_token_never_reaches_the_error():
    t, _, _, _ = make([httpx.Response(400, json={"message": "bad header Bearer token-1"})])
    with pytest.raises(BadRequest) as info:
        await t.request("GET", "/Users/1", OP)
    assert "token-1" not in str(info.value)
    assert "token-1" not in info.value.body


def test_query_encodes_spaces_as_percent_20():
    assert encode_query({"filter": 'email eq "a+b@x.com"'}) == "filter=email%20eq%20%22a%2Bb%40x.com%22"


# --- token bucket (fake clock)


async def test_token_bucket_spaces_requests_at_the_rate():
    now = [0.0]
    sends: list[float] = []

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    bucket = TokenBucket(10.0, burst=1, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        await bucket.acquire()
        sends.append(now[0])
    assert sends == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


async def test_token_bucket_keeps_its_schedule_when_sleepers_wake_late():
    """The event loop wakes every sleeper 7 ms late: the sends still average the rate (the
    lateness is not added to every later slot), and no two slots are closer than 1/rate."""
    now = [0.0]
    sends: list[float] = []

    async def late_sleep(seconds: float) -> None:
        now[0] += seconds + 0.007

    bucket = TokenBucket(10.0, burst=1, clock=lambda: now[0], sleep=late_sleep)
    for _ in range(101):
        await bucket.acquire()
        sends.append(now[0])
    assert sends[-1] == pytest.approx(10.007)  # 100 intervals of 100 ms, plus one late wake-up
    slots = [bucket.reserve() for _ in range(3)]
    assert [b - a for a, b in itertools.pairwise(slots)] == pytest.approx([0.1, 0.1])


async def test_a_pause_voids_the_slot_a_sleeping_sender_holds():
    now = [0.0]
    sends: list[float] = []
    bucket: TokenBucket

    async def sleep(seconds: float) -> None:
        if now[0] == pytest.approx(0.0) and seconds > 0:
            bucket.pause(1.0)  # a 429 lands while the second sender waits for its slot
        now[0] += seconds

    bucket = TokenBucket(10.0, burst=1, clock=lambda: now[0], sleep=sleep)
    for _ in range(2):
        await bucket.acquire()
        sends.append(now[0])
    assert sends == pytest.approx([0.0, 1.0])


async def test_token_bucket_burst_then_rate_and_pause():
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    bucket = TokenBucket(10.0, burst=3, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        await bucket.acquire()
    assert now[0] == 0.0
    await bucket.acquire()
    assert now[0] == pytest.approx(0.1)
    bucket.pause(2.0)
    await bucket.acquire()
    assert now[0] == pytest.approx(2.1)
