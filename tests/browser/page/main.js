// The test page: connects to a Pipecat bot over SmallWebRTC (through the runner's
// /start route at the origin given to startSession, as the runner's own client does), with
// the client examples/offline_web_bot.py's page uses (pipecat-client.js, built in
// examples/web/), plays the bot's audio and video, and records what arrives for
// tests/browser/session.py to read from `window.results`:
//   results.stats  - getStats() every 100 ms: inbound video and audio counters
//   results.frames - one entry per frame the <video> presents: its size, the colour of
//                    the upper area and the frame number decoded from the bottom band
//   results.events - connection milestones, results.errors - anything that went wrong
// Nothing here reaches outside the page's origin: no STUN, no microphone, no camera.
const { connectToBot } = window.PipecatBeyClient;

const now = () => performance.now();
const results = {
  events: [],
  errors: [],
  stats: [],
  frames: [],
  bargeInAt: null,
  state: "idle",
};
window.results = results;

function note(event, data) {
  results.events.push({ t: now(), event, ...(data ?? {}) });
  document.getElementById("status").textContent = `${event}\n${results.state}`;
}

function fail(where, error) {
  results.errors.push({ t: now(), where, message: String(error?.message ?? error) });
}

// --- Peer connections: no ICE servers at all (offline), kept for getStats() ----------

const peerConnections = [];
const NativePeerConnection = window.RTCPeerConnection;

class TestPeerConnection extends NativePeerConnection {
  constructor(config, ...rest) {
    super({ ...(config ?? {}), iceServers: [] }, ...rest);
    peerConnections.push(this);
    note("peer-connection-created");
    // Transceiver 0 carries the bot's audio, 1 its video (2 would be screen video).
    this.addEventListener("track", (event) => {
      const mid = event.transceiver?.mid;
      note("track", { kind: event.track.kind, mid });
      if (mid === "0") {
        attach("bot-audio", event.track);
        listen(event.track);
      }
      else if (mid === "1") attach("bot-video", event.track);
    });
    this.addEventListener("connectionstatechange", () =>
      note("pc-" + this.connectionState),
    );
  }
}
window.RTCPeerConnection = TestPeerConnection;

function attach(elementId, track) {
  const element = document.getElementById(elementId);
  element.srcObject = new MediaStream([track]);
  element.play().catch((error) => fail("play " + elementId, error));
}

// --- Voice: the level of what plays, every 20 ms (getStats' audioLevel decays slowly) ---

function listen(track) {
  try {
    const audio = new AudioContext();
    const analyser = audio.createAnalyser();
    analyser.fftSize = 1024;
    audio.createMediaStreamSource(new MediaStream([track])).connect(analyser);
    const buffer = new Float32Array(analyser.fftSize);
    results.levels = [];
    setInterval(() => {
      analyser.getFloatTimeDomainData(buffer);
      let sum = 0;
      let peak = 0;
      for (const v of buffer) {
        sum += v * v;
        peak = Math.max(peak, Math.abs(v));
      }
      results.levels.push({ t: now(), rms: Math.sqrt(sum / buffer.length), peak });
    }, 20);
    note("audio-context-" + audio.state);
    audio.resume().then(() => note("audio-context-" + audio.state));
  } catch (error) {
    fail("analyser", error);
  }
}

// --- Frames: colour and frame number of every presented frame -------------------------

const canvas = document.createElement("canvas");
const context = canvas.getContext("2d", { willReadFrequently: true });

function readFrame(video, width, height) {
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  context.drawImage(video, 0, 0, width, height);
  const pixels = context.getImageData(0, 0, width, height).data;
  const at = (x, y) => {
    const i = (y * width + x) * 4;
    return [pixels[i], pixels[i + 1], pixels[i + 2]];
  };
  // Mean colour of the upper area (rows 10..60 %, columns 10..90 %), every 4th pixel.
  const sum = [0, 0, 0];
  let count = 0;
  for (let y = Math.floor(height * 0.1); y < Math.floor(height * 0.6); y += 4) {
    for (let x = Math.floor(width * 0.1); x < Math.floor(width * 0.9); x += 4) {
      const p = at(x, y);
      sum[0] += p[0];
      sum[1] += p[1];
      sum[2] += p[2];
      count += 1;
    }
  }
  const rgb = sum.map((s) => Math.round(s / count));
  // Frame number: 16 cells across the bottom band, most significant bit on the left.
  const band = Math.max(16, Math.floor(height / 8));
  const y = height - Math.floor(band / 2) - 1;
  let number = 0;
  for (let i = 0; i < 16; i++) {
    const x = Math.floor(((i + 0.5) * width) / 16);
    const [r, g, b] = at(x, y);
    const luma = 0.299 * r + 0.587 * g + 0.114 * b;
    number = number * 2 + (luma > 128 ? 1 : 0);
  }
  return { rgb, number };
}

function watchFrames() {
  const video = document.getElementById("bot-video");
  const onFrame = (_now, meta) => {
    try {
      const { rgb, number } = readFrame(video, meta.width, meta.height);
      results.frames.push({
        t: now(),
        presented: meta.presentedFrames,
        width: meta.width,
        height: meta.height,
        rgb,
        number,
      });
    } catch (error) {
      fail("frame", error);
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}

// --- Stats: inbound audio and video every 100 ms ---------------------------------------

async function pollStats() {
  const pc = peerConnections[peerConnections.length - 1];
  if (!pc || pc.connectionState === "closed") return;
  const sample = { t: now(), video: null, audio: null };
  const report = await pc.getStats();
  report.forEach((r) => {
    if (r.type !== "inbound-rtp") return;
    if (r.kind === "video" && (r.mid === "1" || (!sample.video && r.mid === undefined))) {
      sample.video = {
        framesDecoded: r.framesDecoded ?? 0,
        framesReceived: r.framesReceived ?? 0,
        framesDropped: r.framesDropped ?? 0,
        framesPerSecond: r.framesPerSecond ?? 0,
        frameWidth: r.frameWidth ?? 0,
        frameHeight: r.frameHeight ?? 0,
      };
    } else if (r.kind === "audio") {
      sample.audio = {
        totalSamplesReceived: r.totalSamplesReceived ?? 0,
        concealedSamples: r.concealedSamples ?? 0,
        audioLevel: r.audioLevel ?? 0,
        totalAudioEnergy: r.totalAudioEnergy ?? 0,
        totalSamplesDuration: r.totalSamplesDuration ?? 0,
      };
    }
  });
  results.stats.push(sample);
}

function startPolling() {
  let busy = false;
  setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      await pollStats();
    } catch (error) {
      fail("stats", error);
    } finally {
      busy = false;
    }
  }, 100);
}

// --- What the driver calls ------------------------------------------------------------

let client = null;

window.startSession = (botOrigin) => {
  watchFrames();
  startPolling();
  note("connecting");
  // No enableDefaultIceServers: the runner then hands out no STUN server.
  const session = connectToBot({
    origin: botOrigin,
    callbacks: {
      onTransportStateChanged: (state) => {
        results.state = state;
        note("transport-" + state);
      },
      onBotReady: () => note("bot-ready"),
      onDisconnected: () => note("disconnected"),
      onError: (message) => fail("rtvi", JSON.stringify(message?.data ?? message)),
    },
  });
  client = session.client;
  session.connected.then(() => note("connected")).catch((error) => fail("connect", error));
};

window.bargeIn = () => {
  results.bargeInAt = now();
  note("barge-in");
  client.sendClientMessage("barge-in", {});
};

window.stopSession = async () => {
  if (client) await client.disconnect();
  note("stopped");
};
