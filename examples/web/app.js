// The offline web bot's page: connect, see and hear the relayed avatar, barge in.
// The client comes from pipecat-client.js (window.PipecatBeyClient, built from client.js).
const { connectToBot } = window.PipecatBeyClient;

const status = (text) => {
  document.getElementById("status").textContent = text;
};
const button = (id) => document.getElementById(id);
let client = null;

function attach(track) {
  const element = button(track.kind === "audio" ? "bot-audio" : "bot-video");
  element.srcObject = new MediaStream([track]);
  element.play().catch((error) => status(`Could not play the bot's ${track.kind}: ${error}`));
}

function setConnected(connected) {
  button("connect").disabled = connected;
  button("barge-in").disabled = !connected;
  button("disconnect").disabled = !connected;
}

button("connect").addEventListener("click", () => {
  button("connect").disabled = true;
  status("Connecting...");
  const session = connectToBot({
    callbacks: {
      onTrackStarted: (track) => attach(track),
      onBotReady: () => status("Connected: the bot greets you through the avatar."),
      onDisconnected: () => {
        setConnected(false);
        status("Disconnected.");
      },
      onError: (message) => status(`Error: ${JSON.stringify(message?.data ?? message)}`),
    },
  });
  client = session.client;
  session.connected
    .then(() => setConnected(true))
    .catch((error) => {
      setConnected(false);
      status(`Could not connect to the bot: ${error?.message ?? error}`);
    });
});

// The bot has no speech recognition offline: this RTVI client message stands for the user
// speaking over it.
button("barge-in").addEventListener("click", () => {
  client?.sendClientMessage("barge-in", {});
  status("You barged in: the avatar stops at once.");
});

button("disconnect").addEventListener("click", () => client?.disconnect());
