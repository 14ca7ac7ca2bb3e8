"""The demo's summary: its report in plain words, and the exit status it makes.

Only the report's keys are read (see :mod:`pipecat_bey.cli.demo.report`), so the
text can be made from a report written earlier as well.
"""

import sys
from typing import Any

STALE_SPEECH_BOUND_S = 0.1
"""The most speech from before a barge-in the avatar speaks after it (the README's bound).

It holds while speech in flight (network delay plus jitter) arrives within
``interrupt_repeats * interrupt_repeat_interval_s`` (0.3 s by default).
"""


def heard_anything(report: dict[str, Any]) -> bool:
    """Whether the user heard the bot at all, through the avatar or its own voice.

    Args:
        report: A report from :func:`pipecat_bey.cli.demo.run_demo`.

    Returns:
        True if the user heard some speech.
    """
    return (report.get("user_heard_bot_s") or 0) + (report.get("user_heard_avatar_s") or 0) > 0


def summary(report: dict[str, Any]) -> str:
    """The report in plain words.

    Args:
        report: A report from :func:`pipecat_bey.cli.demo.run_demo`.

    Returns:
        The text, a few lines.
    """
    lines = [
        f"The bot said {report['input_speech_s']:.2f} s of speech.",
        f"The pipeline started at once (the avatar service held it up "
        f"{report['start_frame_passthrough_ms']} ms).",
    ]
    received = report["avatar_received_speech_s"]
    if report["session_errors"]:
        lines += _without_avatar(report)
    elif received is None:
        lines.append("No avatar received any speech.")
    if received is not None:
        lines.append(
            f"The avatar joined {_num(report['avatar_joined_s'], '.2f')} s after the start; the "
            f"first speech reached it {_num(report['first_audio_latency_ms'], '.0f')} ms later."
        )
        lines += _delivery(report)
    dropped = report.get("held_speech_dropped_s")
    if dropped:
        lines.append(
            f"{dropped:.2f} s of the speech came while the avatar was still on its way, more "
            "than the service holds for it (max_held_audio_s), so the oldest was dropped."
        )
    heard = []
    if report["user_heard_avatar_s"]:
        heard.append(f"the avatar for {report['user_heard_avatar_s']:.2f} s")
    if report["user_heard_bot_s"]:
        heard.append(f"the bot's own voice for {report['user_heard_bot_s']:.2f} s")
    if heard:
        lines.append(f"The user heard {' and '.join(heard)}.")
    if report.get("user_heard_raw_tts_s"):
        lines.append(
            f"The user also heard {report['user_heard_raw_tts_s']:.2f} s of the bot's raw "
            "speech on the avatar's track."
        )
    if report.get("placement") == "relay":
        lines += _relay_lines(report)
    elif received is not None:
        lines.append(f"What the avatar received: {report['out']}")
    if received is not None:
        lines.append(
            "The avatar left the room at the end."
            if report["avatar_left_room"]
            else "The avatar was still in the room at the end."
        )
    return "\n".join(["", "Summary", *(f"  {line}" for line in lines)])


def _relay_lines(report: dict[str, Any]) -> list[str]:
    """How the relayed avatar looked and sounded to the user."""
    lines = [
        "The avatar was backstage, in a private room"
        + (
            ", and never in the user's room."
            if not report["avatar_in_user_room"]
            else "; it was in the user's room too."
        )
    ]
    if report["video_fps"] is not None:
        lines.append(
            f"The user saw it at {report['video_fps']:.1f} frames per second"
            + (
                f", lip sync within {report['av_skew_ms_p95']:.0f} ms (95 % of frames)."
                if report["av_skew_ms_p95"] is not None
                else "."
            )
        )
    if report["relay_correlation"] is not None:
        lines.append(
            f"What the user heard matches what the avatar said (correlation "
            f"{report['relay_correlation']:.2f}); the relay added "
            f"{_num(report['relay_added_latency_ms'], '.0f')} ms from the bot's speech to the "
            "user, the avatar's own rendering aside."
        )
    left = report["backstage_rooms_left"]
    lines.append(
        "Its private room was deleted at the end."
        if not left
        else f"Private rooms left behind: {', '.join(left)}."
    )
    if report["out"]:
        lines.append(f"What the user heard: {report['out']}")
    return lines


def _num(value: float | None, spec: str) -> str:
    return "?" if value is None else format(value, spec)


def _without_avatar(report: dict[str, Any]) -> list[str]:
    """Why there was no avatar, and what the bot did instead."""
    lines = [f"No avatar: {'; then '.join(report['session_errors'])}."]
    if report["fallback"]:
        lines.append("The bot spoke in its own voice instead.")
    else:
        lines.append("The bot's own voice was not heard either.")
    late = report["late_avatar_ejected"]
    if late is True:
        lines.append("The avatar came later, and was ejected at the end.")
    elif late is False:
        lines.append("The avatar came later, and was still in the room at the end.")
    return lines


def _delivery(report: dict[str, Any]) -> list[str]:
    """How much of the speech reached the avatar, speech against speech."""
    said, received = report["input_speech_s"], report["avatar_received_speech_s"]
    if report["interrupted"]:
        after = report["audio_after_interrupt_s"]
        spoke = report["avatar_spoke_after_interrupt_s"] or 0.0
        lines = [
            f"It received {received:.2f} s of the {said:.2f} s before the user barged in; "
            "the barge-in cut the rest.",
            f"It was told to stop {report['interrupt_latency_ms']} ms after the barge-in.",
            "No speech from before the interruption reached the avatar after it."
            if not after
            else f"{after:.2f} s of speech from before the interruption was still on its way "
            f"and reached it after; it spoke {spoke:.2f} s of it (the README's bound: "
            f"{STALE_SPEECH_BOUND_S:g} s).",
        ]
        return lines
    # Both are measured from the first sound to the last; a few 10 ms windows of
    # difference are measurement, not loss.
    missing = said - received
    line = f"It received {received:.2f} s of the {said:.2f} s of speech" + (
        ": all of it." if missing <= 0.15 else f"; {missing:.2f} s did not reach it."
    )
    lines = [line]
    if report["barge_in"]:
        lines.append("The user barged in, but the avatar was not interrupted.")
    return lines


def print_outcome(report: dict[str, Any]) -> int:
    """Print the summary and tell how the run went.

    Args:
        report: A report from :func:`pipecat_bey.cli.demo.run_demo`.

    Returns:
        The exit status: 0 when the user heard the bot (through the avatar or, as a
        fallback, its own voice), 1 when they heard nothing.
    """
    print(summary(report))
    if heard_anything(report):
        return 0
    print(
        "pipecat-bey: error: the user heard nothing, neither the avatar nor the bot's voice",
        file=sys.stderr,
    )
    return 1
