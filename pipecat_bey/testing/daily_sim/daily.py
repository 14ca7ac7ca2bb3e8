"""Call-client layer: the stand-in for daily-python's ``Daily``, its process-wide API.

daily-python keeps virtual devices and settings for the whole process; so does
this ``Daily``, in the ``Devices`` of the simulation it is bound to
(:meth:`Daily.bound_to`): speakers it creates and selects, microphones whose
audio a call client can publish. Calls a voice-bot session does not make raise
``NotImplementedError`` naming themselves.
"""

from typing import Any, ClassVar

from pipecat_bey.testing.daily_sim.devices import (
    Devices,
    VirtualMicrophoneDevice,
    VirtualSpeakerDevice,
)


class Daily:
    """Stand-in for ``daily.Daily``: process-wide devices and settings.

    Use a class made by :meth:`bound_to`, whose devices are a simulation's.
    """

    devices: ClassVar[Devices]

    @classmethod
    def bound_to(cls, devices: Devices) -> type["Daily"]:
        """A subclass whose devices are ``devices``.

        Args:
            devices: The simulation's devices.

        Returns:
            The class to use as daily-python's ``Daily``.
        """
        return type(cls.__name__, (cls,), {"devices": devices})

    @staticmethod
    def init(**kwargs: Any) -> None:
        """Initialise (nothing to do in the simulation).

        Args:
            **kwargs: Accepted for compatibility.
        """

    @staticmethod
    def deinit() -> None:
        """De-initialise (nothing to do)."""

    @staticmethod
    def set_log_level(level: Any) -> None:
        """Accept a log level.

        Args:
            level: The level.
        """

    @classmethod
    def create_speaker_device(
        cls,
        device_name: str,
        sample_rate: int = 16000,
        channels: int = 1,
        non_blocking: bool = False,
    ) -> VirtualSpeakerDevice:
        """Create a virtual speaker.

        Args:
            device_name: Its name.
            sample_rate: Rate it is read at.
            channels: Channels.
            non_blocking: Whether reads return at once.

        Returns:
            The device.
        """
        device = VirtualSpeakerDevice(device_name, sample_rate, channels, non_blocking)
        cls.devices.speakers[device_name] = device
        return device

    @classmethod
    def select_speaker_device(cls, device_name: str) -> None:
        """Make a speaker the process's output (as in Daily, one for all clients).

        Args:
            device_name: The device.
        """
        cls.devices.selected_speaker = cls.devices.speakers[device_name]

    @classmethod
    def create_microphone_device(
        cls,
        device_name: str,
        sample_rate: int = 16000,
        channels: int = 1,
        non_blocking: bool = False,
    ) -> VirtualMicrophoneDevice:
        """Create a virtual microphone whose audio a client can publish.

        Args:
            device_name: Its name.
            sample_rate: Rate of the audio written.
            channels: Channels.
            non_blocking: Whether writes return at once.

        Returns:
            The device.
        """
        device = VirtualMicrophoneDevice(device_name, sample_rate, channels, non_blocking)
        cls.devices.tracks[device_name] = device.source
        return device

    @staticmethod
    def create_native_vad(*args: Any, **kwargs: Any) -> Any:
        """Not simulated.

        Args:
            *args: Ignored.
            **kwargs: Ignored.

        Raises:
            NotImplementedError: Always.
        """
        raise NotImplementedError("the simulated Daily does not support create_native_vad()")
