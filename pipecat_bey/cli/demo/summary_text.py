"""The demo's summary: its report in plain words, and the exit status it makes.

Only the report's keys are read (see :mod:`pipecat_bey.cli.demo.report`), so the
text can be made from a report written earlier as well.
"""

import sys
from typing import Any

from pipecat_bey.config import BeyParams

STALE_SPEECH_BOUND_S = 0.1
"""The most speech from before a barge-in the avatar speaks after it (the README's bound).

It holds while speech in flight (network delay plus jitter) arrives within
``interrupt_repeats * interrupt_repeat_interval_s`` (0.3 s by default).
"""

STALE_SPEECH_WINDOW_S = BeyParams().interrupt_repeats * BeyParams().interrupt_repeat_interval_s
"""How soon speech in flight must arrive for :data:`STALE_SPEECH_BOUND_S` to hold (0.3 s)."""

FIGURE_NAMES = {
    "video_fps": "the frame rate the user saw",
    "av_skew_ms_p95": "the lip sync",
    "relay_correlation": "the likeness of what the user heard to what the avatar said",
    "relay_added_latency_ms": "the delay the relay added",
}
"""The relay's figures, as the summary names them when they could not be measured."""


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
        lines += _played(report)
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
    if report.get("user_heard_both_s"):
        lines.append(f"For {report['user_heard_both_s']:.2f} s the user heard both voices at once.")
    if report.get("user_heard_raw_tts_s"):
        lines.append(
            f"The user also heard {report['user_heard_raw_tts_s']:.2f} s of the bot's raw "
            "speech on the avatar's track."
        )
    if report.get("placement") == "relay":
        lines += _relay_lines(report)
    else:
        lines += _still_on_its_way(report)
        if report["out"]:
            lines.append(f"What the avatar received: {report['out']}")
    if report.get("out_not_written"):
        lines.append(report["out_not_written"])
    if report.get("barge_in_skipped"):
        lines.append(f"The user did not barge in: {report['barge_in_skipped']}.")
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
    fps, skew = report["video_fps"], report["av_skew_ms_p95"]
    if fps is not None:
        lines.append(
            f"The user saw it at {fps:.1f} frames per second"
            + (f", lip sync within {skew:.0f} ms (95 % of frames)." if skew is not None else ".")
        )
    correlation = report["relay_correlation"]
    if correlation is not None:
        alike = "matches" if correlation >= 0.9 else "is only partly like"
        lines.append(
            f"What the user heard {alike} what the avatar said (correlation {correlation:.2f})."
        )
    added = report["relay_added_latency_ms"]
    if added is not None:
        lines.append(
            f"The relay added {added:.0f} ms on the way from the avatar to the user, over an "
            "avatar in the user's room (the hop from the avatar back to the bot, and the "
            "relay's hold)."
        )
    lines += _not_measured(report)
    lines += _still_on_its_way(report)
    left = report["backstage_rooms_left"]
    lines.append(
        "Its private room was deleted at the end."
        if not left
        else f"Private rooms left behind: {', '.join(left)}."
    )
    if report["out"]:
        lines.append(f"What the user heard: {report['out']}")
    return lines


def _not_measured(report: dict[str, Any]) -> list[str]:
    """The relay's figures that could not be measured, and why, one line per reason."""
    reasons: dict[str, list[str]] = {}
    for key, name in FIGURE_NAMES.items():
        why = report.get(f"{key}_not_measured")
        if report.get(key) is None and why:
            reasons.setdefault(why, []).append(name)
    lines = []
    for why, names in reasons.items():
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        lines.append(f"{listed[0].upper()}{listed[1:]} could not be measured here because {why}.")
    return lines


def _still_on_its_way(report: dict[str, Any]) -> list[str]:
    """What the avatar said that had not reached the user when the demo ended."""
    late = report.get("avatar_speech_unheard_at_end_s")
    if not late or late < 0.05:
        return []
    return [
        f"The demo ended while {late:.2f} s of what the avatar said was still on its way to "
        f"the user{_network(report)}, so they did not hear it; the figures above leave it out."
    ]


def _network(report: dict[str, Any]) -> str:
    """The room's media delay in words, when it has one."""
    delay = (report.get("network_delay_s") or 0) + (report.get("jitter_s") or 0)
    return f" (media takes up to {delay:.2f} s per network hop here)" if delay else ""


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
    # Both are measured from the first sound to the last; a few 10 ms windows of
    # difference are measurement, not loss.
    missing = said - received
    if report["interrupted"]:
        after = report["audio_after_interrupt_s"]
        spoke = report["avatar_spoke_after_interrupt_s"] or 0.0
        lines = [
            f"It received {received:.2f} s of the {said:.2f} s before the user barged in; "
            "the barge-in cut the rest."
            if missing > 0.15
            else f"It received all {said:.2f} s of the speech: the barge-in reached the bot "
            "only after it had sent it all, and cut none of it.",
            f"It was told to stop {report['interrupt_latency_ms']} ms after the barge-in "
            "reached the bot.",
            "No speech from before the interruption reached the avatar after it."
            if not after
            else f"{after:.2f} s of speech from before the interruption was still on its way "
            f"and reached it after; it spoke {spoke:.2f} s of it ({_bound(report)}).",
        ]
        return lines
    line = f"It received {received:.2f} s of the {said:.2f} s of speech" + (
        ": all of it." if missing <= 0.15 else f"; {missing:.2f} s did not reach it."
    )
    lines = [line]
    if report["barge_in"] and not report.get("barge_in_skipped"):
        if report.get("barge_in_heard_by_bot") is False:
            lines.append(
                "The user barged in, but the bot had not heard it yet when the demo ended"
                f"{_network(report)}."
            )
        else:
            lines.append("The user barged in, but the avatar was not interrupted.")
    return lines


def _played(report: dict[str, Any]) -> list[str]:
    """How much of each utterance a LiveKit avatar said it played (``lk.playback_finished``)."""
    lines = []
    for finished in report.get("playback_finished") or []:
        position = finished["playback_position"]
        lines.append(
            f"It played {position:.2f} s of an utterance before the barge-in cleared the rest."
            if finished["interrupted"]
            else f"It played an utterance whole ({position:.2f} s)."
        )
    return lines


def _bound(report: dict[str, Any]) -> str:
    """The README's bound on stale speech, and whether it applies to the run."""
    in_flight = (report.get("network_delay_s") or 0) + (report.get("jitter_s") or 0)
    if in_flight <= STALE_SPEECH_WINDOW_S:
        return f"the README's bound: {STALE_SPEECH_BOUND_S:g} s"
    return (
        f"the README's bound of {STALE_SPEECH_BOUND_S:g} s holds while speech in flight "
        f"arrives within {STALE_SPEECH_WINDOW_S:g} s; here it takes up to {in_flight:.2f} s, "
        "so the bound does not apply"
    )


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
    if (report.get("avatar_speech_unheard_at_end_s") or 0) > 0:
        print(
            "pipecat-bey: error: the user heard nothing before the demo ended: the avatar's "
            "voice was still on its way to them",
            file=sys.stderr,
        )
        return 1
    print(
        "pipecat-bey: error: the user heard nothing, neither the avatar nor the bot's voice",
        file=sys.stderr,
    )
    return 1
