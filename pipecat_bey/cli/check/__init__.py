"""``pipecat-bey check``: try your keys and a real avatar in a short-lived Daily room.

The first thing to run with real keys. It goes through every step a bot with an
avatar goes through, prints one line per step as it happens, and measures what
no document tells: how long the session takes to start, the avatar to join and
to show its face, how soon it speaks what it is sent, and how soon it falls
silent after ``"interrupt"``.

1. ``keys``: ``BEY_API_KEY`` and ``DAILY_API_KEY`` are set (and the URLs acceptable).
2. ``room``: a private room that expires in a few minutes (``exp``,
   ``eject_at_room_exp``) is created through Daily's REST API, or ``--room-url``
   is looked up.
3. ``bot_joined``: a bot joins it through pipecat's ``DailyTransport``, with an
   owner meeting token minted for it.
4. ``session_created``: the avatar's token is minted and its session started,
   by :func:`~pipecat_bey.daily.avatar_session.start_avatar_session`.
5. ``avatar_joined``, ``avatar_video``: the avatar joins (the participant whose
   ``info.userId`` is its token's user id), then its camera comes on.
6. ``avatar_spoke``, ``interrupt``: after a short margin, a few seconds of the
   packaged speech go to the avatar on ``bey-custom-track``; its microphone, as
   the bot receives it, tells when it speaks. Once it has spoken about half a
   second, the bot sends ``"interrupt"`` and clears the track's queue, and the
   time until the avatar's microphone falls silent is measured.
7. ``ejected``, ``room_deleted``: the avatar is ejected and the room the check
   created deleted, whatever happened before, Ctrl-C included.

With ``--offline`` the very same code runs against the local Beyond Presence API
and the simulated Daily (``pipecat_bey.testing``), with throwaway keys.

On LiveKit
----------
``pipecat-bey check --livekit`` takes the same steps on a LiveKit server of yours,
the service's own LiveKit code doing what it does in a bot
(``pipecat_bey.livekit``):

1. ``keys``: ``BEY_API_KEY``, ``LIVEKIT_URL``, ``LIVEKIT_API_KEY`` and
   ``LIVEKIT_API_SECRET`` are set (or ``--livekit-url``, ``--livekit-api-key``,
   ``--livekit-api-secret``), the URL acceptable. The secret signs the tokens and
   the server API's requests; it is never sent, printed, logged or recorded, nor is
   any token.
2. ``room``: a room ``pipecat-bey-check-<random>`` is created through the server
   API (``RoomService.CreateRoom``, closed by LiveKit if no one joins it soon).
3. ``bot_joined``: a bot joins it through pipecat's ``LiveKitTransport``, with a
   standard participant's token (publish, subscribe, data) minted for it.
4. ``session_created``: a ``transport: "livekit"`` session is started by
   :class:`~pipecat_bey.livekit.avatar_session.LiveKitAvatarSession`, which mints
   the avatar's token (``mint_avatar_token``).
5. ``avatar_joined``, ``avatar_video``: the avatar (``bey-avatar-agent``) joins,
   then publishes its camera.
6. ``avatar_spoke``, ``interrupt``: a few seconds of the packaged speech go to the
   avatar through the bot's ``LiveKitBotRoom`` (its ``SpeechStream``:
   ``lk.audio_stream``), paced as the service paces it; its microphone, as the bot
   receives it, tells when it speaks (and ``lk.playback_started`` when it says it
   does). Once it has spoken about half a second, the bot barges in as the service
   does (``lk.clear_buffer``), and the time until the avatar's microphone falls
   silent is measured; its ``lk.playback_finished`` is recorded.
7. ``removed``, ``room_deleted``: the avatar is removed through the server API
   (``RoomService.RemoveParticipant``) and the room deleted, whatever happened
   before, Ctrl-C included.

With ``--livekit --offline`` the very same code runs against a real local
``livekit-server``, the local Beyond Presence API and LiveKit's own avatar code
(``pipecat_bey.testing.livekit_world``), in a network namespace of its own: the
command runs itself again under ``unshare -n``.

A LiveKit recording (``--record``) keeps the Daily check's keys (below) where they
mean the same, with ``transport: "livekit"``: ``livekit_url`` and ``room_name``
instead of ``room_url``, ``livekit_key_valid`` instead of ``daily_key_valid``,
``removed`` instead of ``ejected``, offline a ``world`` of the local server's
version and the avatar's join delay; and the avatar's own reports:
``playback_started_ms`` (from the phrase being sent), ``playback_finished_ms``
(from the clear), ``playback_finished`` (``{"position_s", "interrupted"}``), and
``spoken_before_interrupt_s`` (heard at the bot by the clear).

The recording
-------------
``--record FILE`` writes the run as JSON (never a key or a token):

- ``steps``: ``{"name", "ok", "seconds", "hint", "detail"}`` per step taken, in
  order; ``seconds`` is how long the step took, ``hint`` what to do when it failed.
- ``ok``, ``interrupted``, ``started_at``, ``avatar_id``, ``room_url``,
  ``room_created``, ``session_id``; ``offline`` and, offline, ``world`` (the
  simulation's settings).
- ``bey_key_valid``, ``daily_key_valid``: True or False once known, else null.
  ``avatar_token_valid``: True once the avatar joined with it, else null (an
  avatar that does not come may have been refused, or may never have tried).
- ``room_created_s``: the room's creation, one REST round trip.
- ``bot_joined_s``: from the bot's transport starting to the bot being in the room.
- ``session_created_s``: from asking (the avatar's token, then ``POST /v1/sessions``)
  to the session's answer.
- ``avatar_joined_s``: from the session's answer to the avatar joining the room.
- ``avatar_video_s``: from the avatar joining to its camera coming on.
- ``first_avatar_speech_ms``: from the phrase being sent to the avatar's first
  speech arriving back at the bot (both ways through Daily, and its rendering).
- ``interrupt_silence_ms``: from ``"interrupt"`` being sent to the avatar's last
  speech arriving at the bot.
- ``ejected``, ``room_deleted``: whether Daily accepted the eject, and deleted
  the room (null when there was nothing to do).

``pipecat_bey.cli.check.recording.load_recording`` turns a recording into settings
of the simulated Daily (``DailySimulation.from_settings``), so your own timings
drive offline tests; ``pipecat-bey check --offline --world FILE`` runs against them.

The parts
---------
Each module imports only those above it:

- ``steps``: the steps, each printed as it happens and recorded; waiting for events.
- ``phrase``, ``options``: the phrase sent to the avatar; what the check runs with.
- ``keys``: the ``keys`` step.
- ``room``: the room and the bot's token, over Daily's REST API; its deletion.
- ``bot``: the bot's pipeline on ``DailyTransport``, and its microphone meter.
- ``avatar``: the avatar's session, its arrival, speech and interrupt, its eject.
- ``run``: one run, its parts put together (:func:`run_check`).
- ``offline``: the same run against the local stand-ins (:func:`run_offline_check`),
  the only part that uses ``pipecat_bey.testing``, and only once it runs.
- ``command``: the command line (:func:`run_check_cli`).
- ``recording``: recordings as settings of the simulated Daily (not imported here).

And for LiveKit (not imported here: they need ``pipecat-bey[livekit]``), each
importing only those above it and the Daily parts it shares (the steps, the
microphone meter, the phrase):

- ``livekit_room``: the LiveKit options, the ``keys`` step, the room over the
  server API and the bot's token.
- ``livekit_bot``: the bot's pipeline on ``LiveKitTransport`` and its ``LiveKitBotRoom``.
- ``livekit_avatar``: the avatar's session, arrival, speech, clear and removal.
- ``livekit_run``: one run (:func:`~pipecat_bey.cli.check.livekit_run.run_livekit_check`)
  and the same run offline (``run_offline_livekit_check``).
- ``livekit``: the command line (``run_livekit_check_cli``), which checks the
  packages, the server and the namespace before importing the rest.
"""

from pipecat_bey.cli.check.avatar import (
    AVATAR_NAME,
    INTERRUPT_LIMIT_MS,
    INTERRUPT_WAIT_S,
    QUIET_HOLD_S,
    READY_MARGIN_S,
    SPOKEN_BEFORE_INTERRUPT_S,
)
from pipecat_bey.cli.check.bot import BOT_NAME, SPEECH_RMS, MicrophoneMeter
from pipecat_bey.cli.check.command import run_check_cli
from pipecat_bey.cli.check.offline import run_offline_check
from pipecat_bey.cli.check.options import CLEANUP_TIMEOUT_S, REQUEST_TIMEOUT_S, CheckOptions
from pipecat_bey.cli.check.phrase import PHRASE_S, default_phrase, load_phrase
from pipecat_bey.cli.check.run import run_check
from pipecat_bey.cli.check.steps import MEASUREMENTS, STEPS, Progress, Step

__all__ = [
    "AVATAR_NAME",
    "BOT_NAME",
    "CLEANUP_TIMEOUT_S",
    "INTERRUPT_LIMIT_MS",
    "INTERRUPT_WAIT_S",
    "MEASUREMENTS",
    "PHRASE_S",
    "QUIET_HOLD_S",
    "READY_MARGIN_S",
    "REQUEST_TIMEOUT_S",
    "SPEECH_RMS",
    "SPOKEN_BEFORE_INTERRUPT_S",
    "STEPS",
    "CheckOptions",
    "MicrophoneMeter",
    "Progress",
    "Step",
    "default_phrase",
    "load_phrase",
    "run_check",
    "run_check_cli",
    "run_offline_check",
]
