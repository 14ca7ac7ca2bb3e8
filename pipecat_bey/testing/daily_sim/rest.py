"""REST layer: Daily's REST endpoints that bots use, served on loopback.

It sits above the room layer, beside the call client and the participants, and
serves whatever :class:`RestHost` it is given (the simulation's rooms and tokens).
``POST /v1/meeting-tokens``, ``GET/POST/DELETE /v1/rooms``, and
``POST /v1/rooms/{name}/eject``, with Bearer auth and Daily's error shape
(``{"error": ..., "info": ...}``). pipecat's ``DailyRESTHelper`` works against it
through ``daily_api_url``.

Meeting tokens take ``properties.permissions`` (``canSend``, ``canReceive``,
``canAdmin``, ``hasPresence``) and rooms ``properties.owner_only_broadcast``;
malformed ones are refused with a 400 ``invalid-request-error``.
"""

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any, Protocol

from aiohttp import web

from pipecat_bey.testing.daily_sim import permissions
from pipecat_bey.testing.daily_sim.room import Room

_BOOL_PROPERTIES = ("is_owner", "eject_at_token_exp")
_NUMBER_PROPERTIES = ("exp", "nbf", "eject_after_elapsed")
_STRING_PROPERTIES = ("room_name", "user_name", "user_id")


def _error(status: int, error: str, info: str) -> web.Response:
    return web.json_response({"error": error, "info": info}, status=status)


class RestHost(Protocol):
    """What the endpoints serve: a simulation's rooms and meeting tokens."""

    @property
    def rooms(self) -> Mapping[str, Room]:
        """The rooms, by name."""
        ...

    @property
    def rest_latency_s(self) -> float:
        """Time each request takes to be answered."""
        ...

    def mint_token_properties(self, properties: dict[str, Any]) -> str:
        """Mint a meeting token from Daily's property names.

        Args:
            properties: ``room_name``, ``user_id``, ``exp``...

        Returns:
            The token.
        """
        ...

    def create_room(
        self, name: str | None = None, *, private: bool = False, owner_only_broadcast: bool = False
    ) -> Room:
        """Create a room.

        Args:
            name: Its name (None: a fresh one).
            private: Whether joining needs a meeting token.
            owner_only_broadcast: Whether only owners may send media by default.

        Returns:
            The room.
        """
        ...

    def delete_room(self, name: str) -> None:
        """Delete a room, removing whoever is in it.

        Args:
            name: The room.
        """
        ...


class DailyRESTServer:
    """The REST side of a ``DailySimulation``."""

    def __init__(self, host: RestHost, api_key: str) -> None:
        """Create the server (started by the simulation).

        Args:
            host: The simulation whose rooms it serves.
            api_key: The Bearer key it accepts.
        """
        self._host = host
        self._api_key = api_key
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        """Serve on 127.0.0.1 on a free port."""
        app = web.Application(middlewares=[self._auth])
        app.router.add_post("/v1/meeting-tokens", self._meeting_tokens)
        app.router.add_post("/v1/rooms", self._create_room)
        app.router.add_get("/v1/rooms/{name}", self._get_room)
        app.router.add_delete("/v1/rooms/{name}", self._delete_room)
        app.router.add_post("/v1/rooms/{name}/eject", self._eject)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/v1"

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self._host.rest_latency_s:
            await asyncio.sleep(self._host.rest_latency_s)
        if request.headers.get("Authorization") != f"Bearer {self._api_key}":
            return _error(401, "authentication-error", "Bad authorization header format or key")
        return await handler(request)

    async def _body(self, request: web.Request) -> dict[str, Any] | web.Response:
        try:
            body = await request.json()
        except (ValueError, json.JSONDecodeError):
            return _error(400, "invalid-request-error", "request body is not valid json")
        if not isinstance(body, dict):
            return _error(400, "invalid-request-error", "request body must be an object")
        return body

    async def _meeting_tokens(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        properties = body.get("properties", {})
        if not isinstance(properties, dict):
            return _error(400, "invalid-request-error", "properties must be an object")
        for name, value in properties.items():
            if name in _BOOL_PROPERTIES and not isinstance(value, bool):
                return _error(400, "invalid-request-error", f"{name} must be a boolean")
            if name in _NUMBER_PROPERTIES and (
                isinstance(value, bool) or not isinstance(value, (int, float))
            ):
                return _error(400, "invalid-request-error", f"{name} must be a number")
            if name in _STRING_PROPERTIES and not isinstance(value, str):
                return _error(400, "invalid-request-error", f"{name} must be a string")
        if "permissions" in properties:
            try:
                permissions.parse(properties["permissions"])
            except permissions.PermissionsError as e:
                return _error(400, "invalid-request-error", str(e))
        room_name = properties.get("room_name")
        if room_name is not None and room_name not in self._host.rooms:
            return _error(400, "invalid-request-error", f"room_name {room_name} does not exist")
        exp = properties.get("exp")
        if exp is not None and exp < time.time():
            return _error(400, "invalid-request-error", "exp is in the past")
        return web.json_response({"token": self._host.mint_token_properties(properties)})

    async def _create_room(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        name = body.get("name")
        if name is not None and name in self._host.rooms:
            return _error(400, "invalid-request-error", f"a room named {name} already exists")
        properties = body.get("properties", {})
        if not isinstance(properties, dict):
            return _error(400, "invalid-request-error", "properties must be an object")
        owner_only = properties.get("owner_only_broadcast", False)
        if not isinstance(owner_only, bool):
            return _error(400, "invalid-request-error", "owner_only_broadcast must be a boolean")
        room = self._host.create_room(
            name,
            private=body.get("privacy", "public") == "private",
            owner_only_broadcast=owner_only,
        )
        return web.json_response(room.info())

    async def _get_room(self, request: web.Request) -> web.Response:
        room = self._host.rooms.get(request.match_info["name"])
        if room is None:
            return _error(404, "not-found", f"room {request.match_info['name']} was not found")
        return web.json_response(room.info())

    async def _delete_room(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self._host.rooms:
            return _error(404, "not-found", f"room {name} was not found")
        self._host.delete_room(name)
        return web.json_response({"deleted": True, "name": name})

    async def _eject(self, request: web.Request) -> web.Response:
        room = self._host.rooms.get(request.match_info["name"])
        if room is None:
            return _error(404, "not-found", f"room {request.match_info['name']} was not found")
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        ids, user_ids = body.get("ids", []), body.get("user_ids", [])
        if not isinstance(ids, list) or not isinstance(user_ids, list):
            return _error(400, "invalid-request-error", "ids and user_ids must be arrays")
        if not ids and not user_ids:
            return _error(400, "invalid-request-error", "one of ids or user_ids is required")
        ejected = room.eject(ids=ids, user_ids=user_ids, ban=bool(body.get("ban", False)))
        return web.json_response({"ejectedIds": ejected})
