"""A pipecat observer that remembers the frames a test cares about."""

from pipecat.frames.frames import (
    ErrorFrame,
    InterruptionFrame,
    TranscriptionFrame,
    UserAudioRawFrame,
    UserStartedSpeakingFrame,
    VADUserStartedSpeakingFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed

WATCHED = (
    ErrorFrame,
    InterruptionFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    VADUserStartedSpeakingFrame,
)


class FrameRecorder(BaseObserver):
    """Records watched frames once each, and who the user audio came from."""

    def __init__(self):
        super().__init__(observe_every_push=False)
        self.frames = []
        self.audio_from: set[str] = set()

    async def on_push_frame(self, data: FramePushed):
        frame = data.frame
        if isinstance(frame, UserAudioRawFrame):
            self.audio_from.add(frame.user_id)
        elif isinstance(frame, WATCHED):
            self.frames.append(frame)

    def of(self, kind):
        return [f for f in self.frames if isinstance(f, kind)]
