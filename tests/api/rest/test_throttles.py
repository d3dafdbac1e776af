"""The per-user request rate: a fixed-window counter (api.rest.throttles.FixedWindowThrottle)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.test import APIRequestFactory

from api.rest.throttles import UserThrottle
from core.cache import SharedPoolRedisCache, count_hit
from tests.support.requirements import needs_redis
from tests.support.rest import with_rates


def request_of(user):
    request = APIRequestFactory().get("/api/v1/conversations/")
    request.user = user
    return request


def test_concurrent_requests_are_each_counted_once(user, settings):
    # DRF's sliding log reads and writes the whole log: concurrent requests could both
    # read it before either wrote, and both pass as one.
    with_rates(settings, user="10/min")
    request = request_of(user)
    with ThreadPoolExecutor(max_workers=16) as pool:
        allowed = list(pool.map(lambda _: UserThrottle().allow_request(request, None), range(40)))
    assert allowed.count(True) == 10


def test_a_refusal_says_when_the_window_ends_and_the_next_window_admits_again(user, settings):
    with_rates(settings, user="2/s")
    request = request_of(user)
    assert [UserThrottle().allow_request(request, None) for _ in range(2)] == [True, True]
    refused = UserThrottle()
    assert refused.allow_request(request, None) is False
    assert 0 < refused.wait() <= 1
    time.sleep(refused.wait() + 0.05)
    assert UserThrottle().allow_request(request, None) is True


def test_users_have_separate_windows(user, other_user, settings):
    with_rates(settings, user="1/min")
    assert UserThrottle().allow_request(request_of(user), None) is True
    assert UserThrottle().allow_request(request_of(user), None) is False
    assert UserThrottle().allow_request(request_of(other_user), None) is True


@needs_redis("the Redis counter (INCR + EXPIRE NX)")
def test_redis_counts_in_one_expiring_key():
    cache = caches["default"]
    assert isinstance(cache, SharedPoolRedisCache)
    key = f"count-hit-{time.monotonic_ns()}"
    assert [count_hit(cache, key, 30)[0] for _ in range(3)] == [1, 2, 3]
    _, left = count_hit(cache, key, 30)
    assert 29 < left <= 30  # the window started at the first hit, not extended by later ones
    client = cache._cache.get_client(write=True)
    assert 29_000 < client.pttl(cache.make_key(key)) <= 30_000


def test_other_cache_backends_count_in_aligned_windows():
    cache = LocMemCache("count-hit-test", {})
    # An hour's window: these four hits all but never straddle two windows.
    assert [count_hit(cache, "k", 3600)[0] for _ in range(3)] == [1, 2, 3]
    _, left = count_hit(cache, "k", 3600)
    assert 0 < left <= 3600
