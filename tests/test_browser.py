"""A real browser sees and hears the bot: headless Chromium on SmallWebRTC, offline.

Each case runs ``tests/browser/session.py`` inside a network namespace of its own
(``unshare -n``): the bot serves the pipecat runner on 10.203.0.1, the page of
``tests/browser/page/`` (with the client built in ``examples/web/``) connects through the
runner's ``/start`` route, lets the bot speak, then sends the RTVI client message
``barge-in``. This test judges what the page recorded (getStats every 100 ms, and every
presented frame read back from a canvas):

- video: frames decode at the expected size, at >= 20 fps while the bot speaks, show
  the avatar's colour, and carry frame numbers (16 cells in the bottom band) in order;
- voice: samples arrive, the level is above silence while it speaks, and back to
  silence within 1 s of the barge-in, staying there for >= 1 s;
- the page ``examples/offline_web_bot.py`` serves itself loads from the bot alone (every
  request it makes goes to the bot's origin), connects, and plays the avatar's video.

Skips (with the reason) when Chromium, Playwright, aiortc, a network namespace (root)
or the pages' client (``examples/web/dist/``) is missing; .ci/run provides them all and sets
PIPECAT_BEY_BROWSER_REQUIRED=1, which turns such a skip into a failure.
See tests/browser/README.md.
"""

import importlib.util
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BROWSER = ROOT / "tests" / "browser"
WEB = ROOT / "examples" / "web"
CLIENT = WEB / "dist" / "pipecat-client.js"
CHROMIUM = os.environ.get("PIPECAT_BEY_CHROMIUM", "/usr/bin/chromium")

WIDTH, HEIGHT = 320, 240
COLOUR = (40, 110, 170)
COLOUR_TOLERANCE = 30
MIN_FPS = 20.0
SPEAKING_LEVEL = 0.01
SILENT_LEVEL = 0.003
SESSION_TIMEOUT_S = 90

BOTS = {
    "offline_web_bot": ROOT / "examples" / "offline_web_bot.py",
    # The harness's own self-check: a bot that draws the same pattern, no avatar.
    "pattern_bot": BROWSER / "pattern_bot.py",
}


def _missing_requirement() -> str | None:
    """Why this machine cannot run the browser test, or None when it can."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium; or PIPECAT_BEY_CHROMIUM)"
    for module, package in (("playwright", "playwright"), ("aiortc", "pipecat-ai[webrtc]")):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install {package})"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare or ip (util-linux, iproute2) not found"
    probe = subprocess.run(
        ["unshare", "-n", "--", "ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    if probe.returncode != 0:
        return f"cannot make a network namespace with a veth pair (needs root): {probe.stderr}"
    return _build_page()


def _build_page() -> str | None:
    """Rebuild the pages' client when its sources are newer; None when it is ready."""
    sources = [WEB / "client.js", WEB / "package.json"]
    newest = max(p.stat().st_mtime for p in sources)
    stale = not CLIENT.exists() or CLIENT.stat().st_mtime < newest
    if stale and (WEB / "node_modules" / ".bin" / "esbuild").exists() and shutil.which("npm"):
        build = subprocess.run(
            ["npm", "run", "build"], cwd=WEB, capture_output=True, text=True, timeout=60
        )
        if build.returncode != 0:
            pytest.fail(f"building the pages' client failed:\n{build.stdout}\n{build.stderr}")
    if not CLIENT.exists():
        return "the pages' client is not built: run `npm ci && npm run build` in examples/web"
    return None


def _kill_namespace(pid: int) -> None:
    """SIGKILL every process in the network namespace of the session `pid` (all ours)."""
    try:
        namespace = os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return
    if namespace == os.readlink("/proc/self/ns/net"):
        return  # not unshared (yet): only the session itself is ours
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "ns" / "net") == namespace:
                    os.kill(int(entry.name), signal.SIGKILL)
            except OSError:
                pass


def _run_session(bot: Path, out: Path, *, bot_page: bool = False) -> dict:
    command = ["unshare", "-n", "--", sys.executable, str(BROWSER / "session.py")]
    command += ["--bot", str(bot), "--out", str(out), "--chromium", CHROMIUM]
    command += ["--bot-page"] if bot_page else []
    command += ["--deadline-s", str(SESSION_TIMEOUT_S - 15)]
    with open(out / "session.log", "wb") as session_log:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=session_log, stderr=subprocess.STDOUT, start_new_session=True
        )
        timed_out = False
        try:
            process.wait(timeout=SESSION_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            if process.poll() is None:  # timed out, or the test was interrupted
                process.terminate()  # the session then closes the browser and stops the bot
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    _kill_namespace(process.pid)
                    process.kill()
                    process.wait(timeout=10)
    if timed_out:
        pytest.fail(f"the browser session took over {SESSION_TIMEOUT_S} s: see {out}")
    results = out / "results.json"
    if not results.exists():
        log = (out / "session.log").read_text(errors="replace")[-3000:]
        pytest.fail(f"the session wrote no results (exit {process.returncode}):\n{log}")
    return json.loads(results.read_text())


def _in(samples: list[dict], start: float, end: float) -> list[dict]:
    return [s for s in samples if start <= s["t"] <= end]


def _quiet_from(series: list[tuple[float, float]], barge: float) -> float | None:
    """When the level fell below SILENT_LEVEL after the barge-in for good, if it did."""
    after = [(t, level) for t, level in series if t > barge]
    for i, (t, _) in enumerate(after):
        if all(level < SILENT_LEVEL for _, level in after[i:]):
            return t
    return None


def judge(record: dict) -> tuple[dict, list[str]]:
    """What the page recorded, summarised, and every expectation it misses.

    Times are the page's performance.now() in ms.
    """
    problems: list[str] = []
    page = record.get("page") or {}
    if record.get("driver_error"):
        problems.append(f"the driver failed: {record['driver_error']}")
    problems += [f"page error ({e['where']}): {e['message']}" for e in page.get("errors", [])]
    stats = [s for s in page.get("stats", []) if s.get("video") or s.get("audio")]
    video = [s for s in stats if s.get("video")]
    audio = [s for s in stats if s.get("audio")]
    frames = page.get("frames", [])
    barge = page.get("bargeInAt")
    summary: dict = {"frames_presented": len(frames), "stats_samples": len(stats)}
    if not video or not audio or not frames or barge is None:
        problems.append(
            f"nothing to judge: {len(video)} video and {len(audio)} audio stats samples, "
            f"{len(frames)} frames, barge-in sent: {barge is not None}"
        )
        return summary, problems

    # The speaking window: from the first sample with voice to the barge-in.
    loud = [s["t"] for s in audio if s["audio"]["audioLevel"] > SPEAKING_LEVEL]
    speak_start = loud[0] if loud else None
    summary["speaking_window_s"] = round((barge - speak_start) / 1000, 2) if loud else 0.0
    if speak_start is None or barge - speak_start < 1500:
        problems.append(f"the voice was heard for under 1.5 s before the barge-in ({loud[:3]})")
        speak_start = barge - 1500

    # Video: decoded, expected size, rate while speaking.
    window = _in(video, speak_start, barge)
    if len(window) >= 2:
        first, last = window[0], window[-1]
        decoded = last["video"]["framesDecoded"] - first["video"]["framesDecoded"]
        fps = decoded / ((last["t"] - first["t"]) / 1000)
        summary["decoded_fps_speaking"] = round(fps, 1)
        if fps < MIN_FPS:
            problems.append(f"video decoded at {fps:.1f} fps while speaking (< {MIN_FPS})")
    else:
        problems.append("no video stats while the bot spoke")
    if video[-1]["video"]["framesDecoded"] <= video[0]["video"]["framesDecoded"]:
        problems.append("video framesDecoded did not grow")
    sizes = {(s["video"]["frameWidth"], s["video"]["frameHeight"]) for s in window}
    sizes |= {(f["width"], f["height"]) for f in frames}
    summary["frame_sizes"] = sorted(sizes)
    if sizes != {(WIDTH, HEIGHT)}:
        problems.append(f"frame sizes {sorted(sizes)}, expected only {(WIDTH, HEIGHT)}")
    summary["presented_fps_speaking"] = round(
        len(_in(frames, speak_start, barge)) / ((barge - speak_start) / 1000), 1
    )

    # Video content: the avatar's colour above, frame numbers in order below.
    def close(rgb: list[int]) -> bool:
        return all(abs(a - b) <= COLOUR_TOLERANCE for a, b in zip(rgb, COLOUR, strict=True))

    coloured = sum(close(f["rgb"]) for f in frames)
    summary["colour_ok_share"] = round(coloured / len(frames), 3)
    summary["median_rgb"] = [
        sorted(f["rgb"][c] for f in frames)[len(frames) // 2] for c in (0, 1, 2)
    ]
    if coloured < 0.9 * len(frames):
        problems.append(
            f"only {coloured}/{len(frames)} frames show the colour {COLOUR} (+-{COLOUR_TOLERANCE})"
            f" in the upper area; median {summary['median_rgb']}"
        )
    numbers = [f["number"] for f in frames]
    steps = [(b - a) % 65536 for a, b in itertools.pairwise(numbers)]
    backwards = [(i, numbers[i], numbers[i + 1]) for i, d in enumerate(steps) if d > 32768]
    increasing = sum(0 < d <= 32768 for d in steps)
    summary["frame_numbers"] = [numbers[0], numbers[-1]] if numbers else []
    summary["increasing_share"] = round(increasing / len(steps), 3) if steps else 0.0
    if backwards:
        problems.append(f"frame numbers went backwards {len(backwards)} times: {backwards[:5]}")
    if not steps or increasing < 0.8 * len(steps):
        problems.append(f"frame numbers increased in only {increasing}/{len(steps)} steps")

    # Voice: samples arrive, loud while speaking (still at the barge-in), then silence.
    received = [s["audio"]["totalSamplesReceived"] for s in audio]
    if received[-1] <= received[0]:
        problems.append("audio totalSamplesReceived did not grow")
    before = [s["audio"]["audioLevel"] for s in _in(audio, barge - 600, barge)]
    summary["level_before_barge_in"] = round(max(before, default=0.0), 4)
    if max(before, default=0.0) <= SPEAKING_LEVEL:
        problems.append(f"the voice was already silent 0.6 s before the barge-in: {before}")
    # Silence after the barge-in, in what plays (the page's analyser, every 20 ms) and in
    # getStats' audioLevel, which decays by ~4x per 100 ms, so it is given 0.5 s more.
    levels = [(s["t"], s["rms"]) for s in page.get("levels", [])]
    stats_levels = [(s["t"], s["audio"]["audioLevel"]) for s in audio]
    if not levels:
        problems.append("the page's analyser recorded no audio levels")
    for name, series, allowed_ms in (("played", levels, 1000), ("getStats", stats_levels, 1500)):
        quiet_from = _quiet_from(series, barge)
        if quiet_from is None:
            problems.append(f"the voice ({name}) never went silent after the barge-in")
            continue
        silent_after, silent_for = quiet_from - barge, series[-1][0] - quiet_from
        summary[f"silent_after_barge_in_s_{name}"] = round(silent_after / 1000, 2)
        summary[f"silent_for_s_{name}"] = round(silent_for / 1000, 2)
        if silent_after > allowed_ms:
            problems.append(
                f"the voice ({name}) went silent only {silent_after / 1000:.2f} s after the "
                f"barge-in (allowed {allowed_ms / 1000:.1f} s)"
            )
        if silent_for < 1000:
            problems.append(f"the voice ({name}) was silent for only {silent_for / 1000:.2f} s")
    return summary, problems


def judge_bot_page(seen: dict) -> list[str]:
    """Every expectation the page the bot serves itself misses."""
    problems = []
    if seen.get("error"):
        problems.append(f"the bot's page failed: {seen['error']} (status {seen.get('status')!r})")
    origin = seen["origin"]
    elsewhere = [
        url for url in seen["requests"] if not url.startswith((origin + "/", "data:", "blob:"))
    ]
    if elsewhere:
        problems.append(f"the bot's page made requests beyond the bot: {elsewhere[:5]}")
    if not any(url.endswith("/pipecat-client.js") for url in seen["requests"]):
        problems.append(f"the bot's page did not load its client: {seen['requests'][:10]}")
    video = seen.get("video") or {}
    if (video.get("width"), video.get("height")) != (WIDTH, HEIGHT):
        problems.append(f"the bot's page showed video of {video}, expected {WIDTH}x{HEIGHT}")
    if seen.get("audio_tracks") != ["live"]:
        problems.append(f"the bot's page plays audio tracks {seen.get('audio_tracks')}")
    return problems


@pytest.mark.slow
@pytest.mark.parametrize("bot_name", list(BOTS))
def test_browser_sees_and_hears_the_bot(bot_name: str, tmp_path: Path) -> None:
    bot = BOTS[bot_name]
    if not bot.exists():
        pytest.fail(f"{bot.relative_to(ROOT)} does not exist")
    reason = _missing_requirement()
    if reason and os.environ.get("PIPECAT_BEY_BROWSER_REQUIRED"):
        pytest.fail(f"PIPECAT_BEY_BROWSER_REQUIRED is set, but {reason}")
    if reason:
        pytest.skip(reason)

    serves_a_page = bot_name == "offline_web_bot"
    record = _run_session(bot, tmp_path, bot_page=serves_a_page)
    summary, problems = judge(record)
    if serves_a_page:
        problems += judge_bot_page(record.get("bot_page") or {"origin": "", "requests": []})
        summary["bot_page_status"] = (record.get("bot_page") or {}).get("status")
    summary["timings"] = record.get("timings")
    summary["bot_exit_code"] = record.get("bot_exit_code")
    (tmp_path / "summary.json").write_text(json.dumps(summary, indent=2))
    if artifacts := os.environ.get("PIPECAT_BEY_ARTIFACTS"):
        shutil.copytree(tmp_path, Path(artifacts) / bot_name, dirs_exist_ok=True)
    print(f"{bot_name}: {json.dumps(summary)}")

    screenshot = tmp_path / "screenshot.png"
    if not (screenshot.exists() and screenshot.stat().st_size > 0):
        problems.append("no screenshot")
    assert not problems, (
        f"{bot_name}: the browser did not get what the bot promises (files in {tmp_path}):\n- "
        + "\n- ".join(problems)
        + f"\nsummary: {json.dumps(summary)}"
    )
