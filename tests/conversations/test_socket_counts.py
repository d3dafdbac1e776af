"""The counters of open sockets and live followers (`core.cache.add_to_count`): one
atomic update on Redis, the cache's add / incr / touch elsewhere, the same answers on
both (CI runs this file on each)."""

from __future__ import annotations

import asyncio
import copy
import uuid

import pytest
from django.core.cache import cache, caches

from conversations import presence, socket_limits
from core.cache import SharedPoolRedisCache, aadd_to_count, add_to_count


@pytest.fixture(autouse=True)
def fresh_counts(settings):
    """Counts live in the cache: give each test its own key prefix."""
    caches = copy.deepcopy(settings.CACHES)
    prefix = caches["default"].get("KEY_PREFIX", "")
    caches["default"]["KEY_PREFIX"] = f"{prefix}-counts-{uuid.uuid4().hex}"
    settings.CACHES = caches


def test_a_count_starts_at_zero_and_goes_up_and_down():
    assert add_to_count(cache, "k", 1, ttl=60) == 1
    assert add_to_count(cache, "k", 1, ttl=60) == 2
    assert add_to_count(cache, "k", -1) == 1
    assert cache.get("k") == 1


def test_an_increment_past_the_limit_is_refused_and_not_counted():
    assert add_to_count(cache, "k", 1, ttl=60, limit=2) == 1
    assert add_to_count(cache, "k", 1, ttl=60, limit=2) == 2
    assert add_to_count(cache, "k", 1, ttl=60, limit=2) == -1
    assert cache.get("k") == 2
    assert add_to_count(cache, "z", 1, ttl=60, limit=0) == -1
    assert cache.get("z") == 0


def test_a_decrement_of_a_missing_count_leaves_it_missing():
    assert add_to_count(cache, "gone", -1) is None
    assert cache.get("gone") is None
    # Not a negative count that would let extra sockets in later.
    assert add_to_count(cache, "gone", 1, ttl=60, limit=1) == 1


async def test_socket_slots_and_followers_through_the_async_counters(settings):
    settings.CONFAB_WS_MAX_PER_USER = 2
    assert await socket_limits.acquire(7) and await socket_limits.acquire(7)
    assert not await socket_limits.acquire(7)
    await socket_limits.release(7)
    assert await socket_limits.acquire(7)
    # Simultaneous acquires: exactly the cap is admitted.
    for _ in range(2):
        await socket_limits.release(7)
    results = await asyncio.gather(*(socket_limits.acquire(8) for _ in range(10)))
    assert sum(results) == 2

    await presence.follow(5)
    await presence.follow(5)
    assert presence.is_followed(5)
    await presence.unfollow(5)
    await presence.unfollow(5)
    assert not presence.is_followed(5)
    assert await aadd_to_count(cache, presence.follow_key(6), -1) is None


async def test_a_refresh_keeps_a_follower_until_the_new_ttl():
    await presence.follow(11)
    cache.touch(presence.follow_key(11), 1)  # about to expire
    await presence.refresh(11)
    await asyncio.sleep(1.5)
    assert presence.is_followed(11)


@pytest.mark.skipif(
    not isinstance(caches["default"], SharedPoolRedisCache),
    reason="the Redis backend's own path (CI's Redis leg runs it)",
)
async def test_on_redis_a_socket_slot_is_one_script_call():
    """The product's callers reach the one-round-trip script, not the add/incr/touch
    fallback (the `cache` proxy is no SharedPoolRedisCache: it must not be passed)."""
    client = caches["default"]._cache.get_client("x", write=True)

    def calls() -> dict[str, int]:
        stats = client.info("commandstats")
        return {
            name: stats.get(f"cmdstat_{name}", {}).get("calls", 0)
            for name in ("eval", "incrby", "set")
        }

    before = calls()
    assert await socket_limits.acquire(9)
    await presence.follow(9)
    after = calls()
    assert after["eval"] - before["eval"] == 2
    assert after["set"] == before["set"]
