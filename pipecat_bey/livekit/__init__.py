"""LiveKit as a room provider: the avatar in the bot's LiveKit room."""
