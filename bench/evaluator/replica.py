"""One more evaluator replica for ``python -m bench.evaluator --replicas N`` (a process of its
own, as in Kubernetes); stops on SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

from services.evaluator.service import Evaluator
from shared.bus import Bus
from shared.config import EvaluatorSettings
from shared.db import Database


async def main(args: argparse.Namespace) -> None:
    db = Database(args.database_url)
    bus = Bus(args.nats_url, name=args.replica_id)
    await bus.connect()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    settings = EvaluatorSettings(evaluator_batch=args.batch, evaluator_lease_seconds=6)
    await Evaluator(db, bus, settings, replica_id=args.replica_id).run(stop)
    await bus.close()
    db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--nats-url", default=os.environ.get("BACKSTOP_NATS_URL"),
                        help="[env BACKSTOP_NATS_URL]")
    parser.add_argument("--replica-id", required=True)
    parser.add_argument("--batch", type=int, default=256)
    asyncio.run(main(parser.parse_args()))
