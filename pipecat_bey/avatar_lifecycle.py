"""The avatar's life from the bot's side: start, join, ready, lost, ejected.

``AvatarLifecycle`` starts the session, waits (bounded) for the avatar to join
the room, gives it time to subscribe before its speech flows, notices when it
leaves, and ejects it at the end. It tells its owner (the service) what
happened and leaves frames, routing and events to it. Tasks are created and
cancelled through the service, so pipecat tracks them like its own.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from loguru import logger

from pipecat_bey.config import BEY_AUDIO_TRACK, BeyParams
from pipecat_bey.errors import BeyError
from pipecat_bey.rooms import (
    Arrival,
    Avatar,
    AvatarRoom,
    Participant,
    SessionResponse,
    TaskFactory,
)

TaskCanceller = Callable[[asyncio.Task], Awaitable[None]]


@dataclass(frozen=True)
class AvatarCallbacks:
    """What the life cycle tells its owner (times are ``time.time()``).

    Parameters:
        on_session_started: ``(session, requested_at, answered_at)``: the API
            accepted the session.
        on_avatar_joined: ``(participant)``: the avatar joined the room.
        on_avatar_ready: ``()``: the avatar listens; its speech may flow.
        on_avatar_left: ``(participant, reason)``: the avatar left the room.
        on_avatar_lost: ``(message, error)``: the avatar could not start, did
            not join in time, or left.
    """

    on_session_started: Callable[[SessionResponse, float, float], Awaitable[None]]
    on_avatar_joined: Callable[[Participant], Awaitable[None]]
    on_avatar_ready: Callable[[], Awaitable[None]]
    on_avatar_left: Callable[[Participant, str], Awaitable[None]]
    on_avatar_lost: Callable[[str, BeyError], Awaitable[None]]


class AvatarLifecycle:
    """Runs the avatar's session for one bot."""

    def __init__(
        self,
        avatar: Avatar,
        room: AvatarRoom,
        callbacks: AvatarCallbacks,
        *,
        params: BeyParams,
        track: str = BEY_AUDIO_TRACK,
        create_task: TaskFactory,
        cancel_task: TaskCanceller,
    ) -> None:
        """Prepare the life cycle; nothing happens until :meth:`start`.

        Args:
            avatar: The avatar's session record.
            room: The room the avatar joins.
            callbacks: Told of what happens.
            params: The timings: ``avatar_join_timeout_s`` (from start, for the
                avatar to join), ``avatar_video_timeout_s`` (from its join, for
                its camera, before speech goes to it anyway),
                ``avatar_ready_delay_s`` (from its camera, the margin before its
                speech flows), ``eject_timeout_s``, ``interrupt_repeats`` and
                ``interrupt_repeat_interval_s``.
            track: The track the avatar listens to (Daily's custom track); it is kept
                from everyone else in the room.
            create_task: Creates a named task (the service's ``create_task``).
            cancel_task: Cancels one (the service's ``cancel_task``).
        """
        self._avatar = avatar
        self._room = room
        self._callbacks = callbacks
        self._track = track
        self._join_timeout_s = params.avatar_join_timeout_s
        self._video_timeout_s = params.avatar_video_timeout_s
        self._ready_delay_s = params.avatar_ready_delay_s
        self._eject_timeout_s = params.eject_timeout_s
        self._interrupt_repeats = params.interrupt_repeats
        self._interrupt_repeat_interval_s = params.interrupt_repeat_interval_s
        self._create_task = create_task
        self._cancel_task = cancel_task
        self._tasks: dict[str, asyncio.Task] = {}
        self._ending = False
        self._gave_up = False
        self._camera_on = asyncio.Event()
        self._track_refused = False
        self.camera_on_at: float | None = None
        """``time.monotonic()`` when the avatar's camera was last seen coming on."""
        room.on_events(
            participant_joined=self._on_participant_joined,
            participant_updated=self._on_participant_updated,
            participant_left=self._on_participant_left,
        )

    @property
    def ending(self) -> bool:
        """Whether the pipeline is ending (nothing may change where speech goes)."""
        return self._ending

    def start(self, http: Any) -> None:
        """Start the session and the join watchdog, in the background.

        Args:
            http: The HTTP session for the APIs (None: the avatar opens one).
        """
        try:
            self._avatar.use_session(http)
        except Exception as e:  # never silence the bot: fall back instead
            self.fail(f"the avatar service could not set up: {e}", BeyError(str(e)))
            return
        self.spawn(self._start_session(), "start_session")
        self.spawn(self._join_watchdog(), "join_watchdog")

    def fail(self, message: str, error: BeyError) -> None:
        """Give up on the avatar (the service could not set up, say).

        Args:
            message: What happened.
            error: The error to report.
        """
        self.spawn(self._lost(message, error), "lost")

    def repeat_interrupt(self, send_again: Callable[[], Awaitable[bool]]) -> None:
        """Send "interrupt" again, a few times, after a barge-in.

        Over Daily, app messages travel on their own path and can overtake audio
        sent just before them, so speech still in flight arrives after the first
        "interrupt" and would be spoken. Each repeat drops what has arrived since.
        A new barge-in starts the repeats over.

        Args:
            send_again: Sends it again; returns False, to stop, once new speech
                went to the avatar.
        """

        async def repeat() -> None:
            for _ in range(self._interrupt_repeats):
                await asyncio.sleep(self._interrupt_repeat_interval_s)
                if not await send_again():
                    return

        self.spawn(repeat(), "repeat_interrupt")

    async def stop_timers(self) -> None:
        """From the end on, no timer may change where speech goes."""
        self._ending = True
        await self._cancel("join_watchdog", "avatar_ready")

    async def end(self) -> None:
        """Cancel everything of ours, eject the avatar, release the room; safe to call again."""
        await self.stop_timers()
        await self._cancel(*self._tasks)
        await self._avatar.eject(self._eject_timeout_s)
        await self._room.close(self._eject_timeout_s)

    def spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        """Run a task of the avatar's, replacing (and cancelling) one of the same name.

        Every such task is cancelled at the end.

        Args:
            coroutine: What to run.
            name: Its name, unique among the avatar's tasks.
        """
        previous = self._tasks.pop(name, None)
        if previous is not None and not previous.done():
            previous.cancel()
        self._tasks[name] = self._create_task(coroutine, f"bey_{name}")

    async def _cancel(self, *names: str) -> None:
        for name in names:
            task = self._tasks.pop(name, None)
            if task is not None:
                await self._cancel_task(task)

    async def _start_session(self) -> None:
        requested_at = time.time()
        try:
            self._avatar.room_url = await self._room.prepare()
            session = await self._avatar.start()
        except BeyError as e:
            await self._lost(f"the avatar could not start: {e}", e)
            return
        except Exception as e:  # never silence the bot: report it and fall back
            logger.exception("the avatar's room could not be prepared")
            await self._lost(f"the avatar could not start: {e}", BeyError(str(e)))
            return
        logger.info(f"Beyond Presence session {session.id} started")
        await self._callbacks.on_session_started(session, requested_at, time.time())

    async def _join_watchdog(self) -> None:
        await asyncio.sleep(self._join_timeout_s)
        if self._avatar.participant_id is None and not self._gave_up:
            message = f"the avatar did not join the room within {self._join_timeout_s:g} s"
            await self._lost(f"{message} (avatar_join_timeout_s)", BeyError(message))

    async def _lost(self, message: str, error: BeyError) -> None:
        if self._ending:
            return
        self._gave_up = True
        await self._callbacks.on_avatar_lost(message, error)

    async def _on_participant_joined(self, participant: Participant) -> None:
        if self._ending:
            return
        arrival = self._avatar.arrived(participant)
        if arrival is Arrival.OTHER:
            await self._keep_track_from(participant)
        elif arrival is Arrival.DUPLICATE:
            logger.warning("a second avatar joined the room; ejecting it")
            await self._avatar.eject_participant(str(participant["id"]))
        else:
            participant_id = str(participant["id"])
            # Its microphone is the bot's own speech coming back: keep it from STT and VAD.
            await self._room.avatar_arrived(participant_id)
            logger.info(f"the avatar joined the room ({participant_id})")
            self._camera_on.clear()
            self._note_camera(participant)
            await self._callbacks.on_avatar_joined(participant)
            await self._cancel("avatar_ready")
            self.spawn(self._avatar_ready(), "avatar_ready")

    async def _keep_track_from(self, participant: Participant) -> None:
        """One voice: whoever is not the avatar must not hear the bot's raw speech."""
        if self._track_refused:
            return  # refused once, refused again: say it once, not per participant
        error = await self._room.keep_track_from(str(participant["id"]), self._track)
        if error:
            self._track_refused = True
            logger.warning(
                f"could not keep {self._track} from the other participants ({error}), so a "
                "client that plays every track may hear the bot's raw voice as well as the "
                "avatar; mint the bot's meeting token with is_owner=True (as pipecat's runner "
                "does) or with permissions canAdmin=['participants']"
            )

    async def _on_participant_updated(self, participant: Participant) -> None:
        if self._avatar.participant_id == str(participant.get("id")):
            self._note_camera(participant)

    def _note_camera(self, participant: Participant) -> None:
        if self._room.camera_on(participant) and not self._camera_on.is_set():
            self.camera_on_at = time.monotonic()
            self._camera_on.set()

    async def _avatar_ready(self) -> None:
        # The avatar renders, and so listens, once its camera is on; a margin covers
        # a subscription that lags behind it.
        try:
            await asyncio.wait_for(self._camera_on.wait(), self._video_timeout_s)
        except (TimeoutError, asyncio.TimeoutError):  # the same class from Python 3.11
            logger.warning(
                f"the avatar's camera did not come on within {self._video_timeout_s:g} s of its "
                "joining (avatar_video_timeout_s); sending it speech anyway"
            )
        await asyncio.sleep(self._ready_delay_s)
        if not self._ending and self._avatar.participant_id is not None:
            self._gave_up = False
            await self._callbacks.on_avatar_ready()

    async def _on_participant_left(self, participant: Participant, reason: str) -> None:
        if not self._avatar.departed(participant):
            return
        await self._cancel("avatar_ready")
        await self._callbacks.on_avatar_left(participant, reason)
        if not self._ending:
            logger.warning(f"the avatar left the room ({reason})")
            message = f"the avatar left the room ({reason})"
            await self._lost(message, BeyError(message))
