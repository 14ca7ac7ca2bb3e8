"""Where the avatar is: in the bot's room, or backstage with its media relayed."""
