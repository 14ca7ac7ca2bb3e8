"""Beyond Presence video avatars for Pipecat voice bots on Daily."""
