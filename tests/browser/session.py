"""One browser session against a bot, inside a network namespace of its own.

Run by tests/test_browser.py as ``unshare -n -- python tests/browser/session.py ...``:
it brings up ``lo`` and a veth pair (aioice offers no candidate on 127.0.0.1, so the
bot needs a real interface), starts the bot on 10.203.0.1, opens the page from
``page/`` (with the client built in ``examples/web/dist/``) in headless Chromium at the
bot's origin, lets the bot speak, sends the ``barge-in`` client message and keeps
listening. With ``--bot-page`` it first opens the page the bot serves itself at ``/``,
clicks Connect and waits for the bot's video to play. It writes what the pages
recorded to ``<out>/results.json`` (plus ``screenshot.png``, ``bot_page.png`` and
``bot.log``); judging is the test's job. Every wait is bounded; the bot is ended with
a bounded wait, then killed.
"""

import argparse
import http.server
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGE = HERE / "page"
CLIENT = HERE.parent.parent / "examples" / "web" / "dist" / "pipecat-client.js"
"""The client both pages load, built once in examples/web (``npm ci && npm run build``)."""
HOST = "10.203.0.1"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


def log(message: str) -> None:
    print(f"[session {time.monotonic():9.2f}] {message}", file=sys.stderr, flush=True)


def _abort(signum: int, frame: object) -> None:
    raise TimeoutError(f"session aborted by {signal.Signals(signum).name}")


def setup_network() -> None:
    for command in (
        "ip link set lo up",
        "ip link add v0 type veth peer name v1",
        f"ip addr add {HOST}/24 dev v0",
        "ip link set v0 up",
        "ip link set v1 up",
    ):
        subprocess.run(command.split(), check=True, timeout=10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, directory=str(PAGE), **kwargs)

    def translate_path(self, path: str) -> str:
        if path.split("?")[0] == "/" + CLIENT.name:
            return str(CLIENT)
        return super().translate_path(path)

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve_page(port: int) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer((HOST, port), _QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def wait_for_bot(bot: subprocess.Popen, url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if bot.poll() is not None:
            raise RuntimeError(f"the bot exited with code {bot.returncode} before serving")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the bot did not serve {url} within {timeout_s:.0f} s")


def stop_bot(bot: subprocess.Popen) -> None:
    """SIGINT, then SIGTERM, each with a bounded wait; then SIGKILL."""
    for sig, wait_s in ((signal.SIGINT, 3.0), (signal.SIGTERM, 2.0)):
        if bot.poll() is not None:
            return
        bot.send_signal(sig)
        try:
            bot.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            pass
    log("the bot did not exit on SIGINT/SIGTERM: killing it")
    bot.kill()
    bot.wait(timeout=5)


def visit_bot_page(browser: object, origin: str, out: Path, timeout_s: float) -> dict:
    """Open the page the bot serves at ``/``, connect, and wait for the bot's video to play.

    Records every request the page made, what its <video> and <audio> play, and its
    status line; then disconnects (the bot ends that session).
    """
    seen: dict = {"origin": origin, "requests": [], "console": []}
    page = browser.new_page(viewport={"width": 720, "height": 720})
    page.set_default_timeout(15_000)
    page.on("request", lambda request: seen["requests"].append(request.url))
    page.on("console", lambda m: seen["console"].append(f"{m.type}: {m.text}"[:500]))
    page.on("pageerror", lambda e: seen["console"].append(f"pageerror: {e}"[:500]))
    try:
        page.goto(f"{origin}/")
        page.click("#connect")
        page.wait_for_function(
            """() => {
                const video = document.getElementById("bot-video");
                const audio = document.getElementById("bot-audio");
                return video.videoWidth > 0 && video.currentTime > 1 && audio.srcObject;
            }""",
            timeout=timeout_s * 1000,
            polling=100,
        )
        seen["video"] = page.evaluate(
            """() => {
                const video = document.getElementById("bot-video");
                return { width: video.videoWidth, height: video.videoHeight };
            }"""
        )
        seen["audio_tracks"] = page.evaluate(
            """() => document.getElementById("bot-audio").srcObject.getAudioTracks()
                .map((track) => track.readyState)"""
        )
        seen["status"] = page.inner_text("#status")
        page.screenshot(path=str(out / "bot_page.png"))
        page.click("#disconnect")
        page.wait_for_function("() => !document.getElementById('connect').disabled")
    except Exception as error:
        seen["error"] = f"{type(error).__name__}: {error}"
        seen["status"] = page.inner_text("#status")
        page.screenshot(path=str(out / "bot_page.png"))
    finally:
        page.close()
    return seen


def drive_browser(args: argparse.Namespace, origin: str, page_origin: str, out: Path) -> dict:
    from playwright.sync_api import sync_playwright

    record: dict = {"console": [], "marks": {}}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=args.chromium, args=CHROMIUM_FLAGS, headless=True, timeout=30_000
        )
        try:
            if args.bot_page:
                record["bot_page"] = visit_bot_page(browser, origin, out, args.connect_timeout)
                log(f"the bot's own page: {record['bot_page'].get('status')!r}")
            page = browser.new_page(viewport={"width": 480, "height": 320})
            page.set_default_timeout(15_000)
            page.on("console", lambda m: record["console"].append(f"{m.type}: {m.text}"[:500]))
            page.on("pageerror", lambda e: record["console"].append(f"pageerror: {e}"[:500]))

            page.goto(f"{page_origin}/index.html")
            page.evaluate("bot => window.startSession(bot)", origin)
            mark = record["marks"]
            mark["started"] = page.evaluate("performance.now()")

            # The bot's video and voice both arrive.
            page.wait_for_function(
                """() => {
                    const r = window.results;
                    const last = r.stats[r.stats.length - 1];
                    return r.errors.length > 0 || (r.frames.length > 0 && last && last.audio
                        && last.audio.audioLevel > 0.01);
                }""",
                timeout=args.connect_timeout * 1000,
                polling=50,
            )
            mark["speaking"] = page.evaluate("performance.now()")
            log("video and voice arrived")
            page.wait_for_timeout(args.speak_s * 1000)
            page.screenshot(path=str(out / "screenshot.png"))
            page.evaluate("window.bargeIn()")
            log("barge-in sent")
            page.wait_for_timeout(args.after_s * 1000)
            record["page"] = page.evaluate("window.results")
            page.evaluate(
                "Promise.race([window.stopSession(), new Promise(r => setTimeout(r, 2000))])"
            )
        except Exception as error:
            record["driver_error"] = f"{type(error).__name__}: {error}"
            try:
                record["page"] = page.evaluate("window.results")
                page.screenshot(path=str(out / "screenshot.png"))
            except Exception as inner:
                record["driver_error"] += f" (and then {type(inner).__name__}: {inner})"
        finally:
            browser.close()
    return record


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bot", required=True, help="the bot file (a pipecat runner bot)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--page-port", type=int, default=8000)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--connect-timeout", type=float, default=20.0)
    parser.add_argument("--speak-s", type=float, default=2.0)
    parser.add_argument("--after-s", type=float, default=2.5)
    parser.add_argument("--deadline-s", type=int, default=75, help="give up after this")
    parser.add_argument(
        "--bot-page", action="store_true", help="first open the page the bot serves at /"
    )
    args = parser.parse_args()
    # Ended by the test (SIGTERM) or by the deadline: unwind, so the finally blocks
    # close the browser and stop the bot.
    signal.signal(signal.SIGTERM, _abort)
    signal.signal(signal.SIGALRM, _abort)
    signal.alarm(args.deadline_s)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    setup_network()
    origin = f"http://{HOST}:{args.port}"
    # The page is served from a real socket next to the bot (Chromium's local-network
    # checks block a page of unknown address space, e.g. one fulfilled by Playwright's
    # routing, from fetching the bot's routes); the runner allows any origin (CORS).
    page_server = serve_page(args.page_port)
    page_origin = f"http://{HOST}:{args.page_port}"
    started = time.monotonic()
    timings: dict[str, float] = {}
    with open(out / "bot.log", "wb") as bot_log:
        bot = subprocess.Popen(
            [sys.executable, args.bot, "--host", HOST, "--port", str(args.port)],
            stdout=bot_log,
            stderr=subprocess.STDOUT,
            cwd=HERE.parent.parent,
        )
        try:
            wait_for_bot(bot, f"{origin}/status", timeout_s=30)
            timings["bot_ready_s"] = time.monotonic() - started
            log(f"the bot serves {origin}")
            record = drive_browser(args, origin, page_origin, out)
            timings["browser_done_s"] = time.monotonic() - started
        except Exception as error:
            record = {"driver_error": f"{type(error).__name__}: {error}"}
        finally:
            stop_bot(bot)
            timings["bot_stopped_s"] = time.monotonic() - started
            page_server.shutdown()
    record["timings"] = timings
    record["bot_exit_code"] = bot.returncode
    signal.alarm(0)
    (out / "results.json").write_text(json.dumps(record))
    log(f"done: {timings}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
