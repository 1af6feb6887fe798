"""Acknowledgements matched to their publishers, against a real nats-server."""

import asyncio
from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import DiscardPolicy, StreamConfig
from nats.js.errors import APIError, NoStreamResponseError

from shared.pubacks import PubAcks


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NatsClient]:
    client = await nats.connect(nats_url)
    js = client.jetstream()
    await js.add_stream(StreamConfig(name="PUBACKS", subjects=["pubacks.>"], max_msgs=3,
                                     discard=DiscardPolicy.NEW))
    yield client
    await js.delete_stream("PUBACKS")
    await client.close()


@pytest.fixture
async def acks(nc: NatsClient) -> AsyncIterator[PubAcks]:
    acks = PubAcks(nc)
    await acks.start()
    yield acks
    await acks.close()


async def test_stored_then_duplicate(acks: PubAcks) -> None:
    assert await acks.publish("pubacks.a", b"1", "m1", 5) is False
    assert await acks.publish("pubacks.a", b"1", "m1", 5) is True
    assert acks.pending == 0


async def test_a_refusal_by_the_stream_is_its_api_error(acks: PubAcks) -> None:
    for n in range(3):
        await acks.publish("pubacks.a", b"x", f"full{n}", 5)
    with pytest.raises(APIError) as refused:
        await acks.publish("pubacks.a", b"x", "one-too-many", 5)
    assert "maximum messages" in str(refused.value)


async def test_no_stream_is_refused_at_once(acks: PubAcks) -> None:
    with pytest.raises(NoStreamResponseError):
        await asyncio.wait_for(acks.publish("elsewhere.a", b"x", "m", 30), timeout=2)
    assert acks.pending == 0


async def test_an_ack_that_never_comes_times_out(acks: PubAcks, nc: NatsClient) -> None:
    # A plain subscriber takes the message (so no "no responders") but never answers.
    silent = await nc.subscribe("silent.a")
    try:
        with pytest.raises(NatsTimeoutError):
            await acks.publish("silent.a", b"x", "m", 0.2)
        assert acks.pending == 0
        # A reply arriving after its publisher gave up is dropped quietly.
        late = await silent.next_msg(timeout=1)
        await late.respond(b'{"stream":"S","seq":1}')
        await nc.flush()
        assert await acks.publish("pubacks.b", b"y", "after", 5) is False
    finally:
        await silent.unsubscribe()


async def test_concurrent_publishers_each_get_their_own_answer(acks: PubAcks) -> None:
    first = await acks.publish("pubacks.c", b"x", "seen", 5)
    results = await asyncio.gather(
        acks.publish("pubacks.c", b"x", "seen", 5),
        acks.publish("pubacks.c", b"x", "new", 5),
        acks.publish("pubacks.c", b"x", "seen", 5),
    )
    assert (first, results) == (False, [True, False, True])
