#!/usr/bin/env python3
"""A GraphQL server with subscriptions for tests/it/graphql_ws.rs: strawberry-graphql
on uvicorn, speaking graphql-transport-ws at /graphql. Prints its port, then serves:

  subscription { count(target: N) }   N `next` messages (0 .. N-1), then `complete`
  subscription { forever }            a message every 50 ms until completed
  GET /stats                          {"subscriptions": started, "messages": sent,
                                       "completed_by_client": ...}

Usage: graphql_server.py [PORT]   (0, the default: a free port)
"""

import asyncio
import json
import logging
import socket
import sys
from typing import AsyncGenerator

import strawberry
import uvicorn
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

logging.getLogger("strawberry").setLevel(logging.CRITICAL)

STATS = {"subscriptions": 0, "messages": 0, "completed_by_client": 0}


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "world"


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def count(self, target: int = 3) -> AsyncGenerator[int, None]:
        STATS["subscriptions"] += 1
        for i in range(target):
            STATS["messages"] += 1
            yield i

    @strawberry.subscription
    async def forever(self) -> AsyncGenerator[int, None]:
        STATS["subscriptions"] += 1
        i = 0
        try:
            while True:
                STATS["messages"] += 1
                yield i
                i += 1
                await asyncio.sleep(0.05)
        except (asyncio.CancelledError, GeneratorExit):
            STATS["completed_by_client"] += 1
            raise


graphql = GraphQL(
    strawberry.Schema(query=Query, subscription=Subscription),
    subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
)


async def app(scope, receive, send):
    if scope["type"] == "http" and scope["path"] == "/stats":
        body = json.dumps(STATS).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
        return
    await graphql(scope, receive, send)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    # Listening before the port is printed: connections wait in the backlog until
    # uvicorn accepts them.
    sock.listen(128)
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="auto")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
