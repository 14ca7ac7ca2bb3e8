"""Daily as a room provider: its REST API, the bot's own room, the avatar's private room."""
