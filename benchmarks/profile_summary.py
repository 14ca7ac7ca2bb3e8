"""Summarise a py-spy profile (``--format raw``) by who owns the code: a table of shares.

    py-spy record --rate 250 --format raw --threads -o relay.txt -- \\
        python benchmarks/run.py --only relay_scale --bots 1 --size 1280x720 --seconds 40
    python benchmarks/profile_summary.py relay.txt

Each sample goes to the innermost frame of the code it is attributed to: ours
(``pipecat_bey``), the simulation (``pipecat_bey/testing``: the stand-ins for daily-python,
Daily and the Bey API), pipecat, or the benchmark itself; what they call (asyncio, numpy,
PIL, the standard library) counts as theirs. Samples with no such frame are "loop": asyncio's
loop and the futures and locks that carry callbacks between threads. Import-time samples are
left out.
"""

import argparse
import collections
import re

FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*):(?P<line>\d+)\)$")


def owner(file: str, function: str = "") -> str | None:
    """Who a frame's code belongs to, or None for what they call (and the benchmark's entry)."""
    if file.startswith("pipecat_bey/testing/"):
        return "simulation"
    if file.startswith("pipecat_bey/"):
        return "ours"
    if file.startswith("pipecat/"):
        return "pipecat"
    if file == "run.py" and function not in ("<module>", "main"):
        return "benchmark"
    if file.startswith("bench_") and function != "<module>":
        return "benchmark"  # the benchmarks and what they share, beside run.py
    return None


def parse(path: str):
    """Yield ``(thread, frames, count)`` per stack, frames outermost first."""
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            parts = stack.split(";")
            thread = parts[0] if parts[0].startswith(("thread", "process")) else ""
            frames = []
            for part in parts[1:] if thread else parts:
                m = FRAME.match(part)
                if m:
                    frames.append((m["function"], m["file"], int(m["line"])))
            yield thread, frames, int(count)


# Functions worth seeing inclusively (everything they call): the relay's path.
MARKERS = (
    "BackstageRoom._avatar_video",
    "BackstageRoom._avatar_audio",
    "RelayPlayout._play_voice",
    "RelayPlayout._play_faces",
    "SpeechWriter.run",
    "RelayPlacement._pass_face",
    "RelayPlacement._pass_voice",
    "BeyVideoService.process_frame",
    "is_silence",
    "VideoFrame.buffer",
    "BaseOutputTransport.MediaSender.handle_image_frame",
    "BaseOutputTransport.MediaSender._video_task_handler",
    "BaseOutputTransport.MediaSender._draw_image",
    "BaseOutputTransport.MediaSender._audio_task_handler",
    "BaseOutputTransport.MediaSender.handle_audio_frame",
    "BaseOutputTransport.process_frame",
    "WorkerObserver._proxy_task_handler",
    "WorkerObserver.on_push_frame",
    "DailyTransportClient._callback_task_handler",
    "run_coroutine_threadsafe",
    "_chain_future.<locals>._call_set_state",
    "SyntheticCamera._tick",
    "Member.publish_video",
    "Member.publish_audio",
    "SimulatedParticipant._stream_microphone",
)


def summarise(path: str, top: int, markers: tuple[str, ...] = MARKERS) -> None:
    by_owner: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    by_file: collections.Counter[str] = collections.Counter()
    by_function: collections.Counter[str] = collections.Counter()
    by_thread: collections.Counter[str] = collections.Counter()
    marked: collections.Counter[str] = collections.Counter()
    total = imports = 0
    for thread, frames, count in parse(path):
        if any("importlib" in file for _, file, _ in frames):
            imports += count
            continue
        total += count
        by_thread[thread] += count
        attributed = None
        for function, file, _ in reversed(frames):
            who = owner(file, function)
            if who is not None:
                attributed = (who, function, file)
                break
        who = attributed[0] if attributed else "loop"
        by_owner[who] += count
        if attributed:
            by_file[f"{who}: {attributed[2]}"] += count
            by_function[f"{attributed[2]}:{attributed[1]}"] += count
        for name in {owner(file, function) for function, file, _ in frames} - {None}:
            inclusive[name] += count  # type: ignore[index]
        for marker in {function for function, _, _ in frames} & set(markers):
            marked[marker] += count

    def share(n: int) -> str:
        return f"{n / total * 100:5.1f} %"

    print(f"{total} samples ({imports} at import time left out)\n")
    print("owner          innermost   inclusive")
    for name, n in by_owner.most_common():
        print(f"  {name:12} {share(n)}   {share(inclusive.get(name, 0)) if name != 'loop' else ''}")
    print("\nthreads")
    for name, n in by_thread.most_common():
        print(f"  {share(n)}  {name}")
    print("\nfunctions, inclusive (all they call)")
    for name in markers:
        print(f"  {share(marked.get(name, 0))}  {name}")
    print("\nfiles (innermost owned frame)")
    for name, n in by_file.most_common(top):
        print(f"  {share(n)}  {name}")
    print("\nfunctions (innermost owned frame)")
    for name, n in by_function.most_common(top):
        print(f"  {share(n)}  {name}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", help="py-spy's --format raw output")
    parser.add_argument("--top", type=int, default=25, help="rows of the file and function lists")
    args = parser.parse_args()
    summarise(args.profile, args.top)
