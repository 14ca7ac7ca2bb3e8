// A Pipecat client for a SmallWebRTC bot that needs no network beyond the bot itself.
//
// Built with esbuild into dist/pipecat-client.js (`npm ci && npm run build` here), which
// defines `window.PipecatBeyClient`. The examples' page (index.html) and the browser
// test's page (tests/browser/page/) both load it.
//
// Two things keep it offline:
// - its media manager captures and plays nothing itself: the page attaches the bot's
//   tracks to its own <audio> and <video>. (The transport's default media manager drives
//   daily-js, which fetches Daily's call bundle from a CDN.)
// - it asks the runner for no ICE servers (no `enableDefaultIceServers`, and none given
//   to the transport), so no STUN request leaves the machine.
import { PipecatClient } from "@pipecat-ai/client-js";
import { SmallWebRTCTransport } from "@pipecat-ai/small-webrtc-transport";

/** A media manager with no microphone, camera or speaker of its own: the page only listens. */
export class ReceiveOnlyMediaManager {
  constructor() {
    this._callbacks = {};
    this._options = null;
  }
  setUserAudioCallback() {}
  setClientOptions(options, override = false) {
    if (this._options && !override) return;
    this._options = options;
    this._callbacks = options.callbacks ?? {};
  }
  get supportsScreenShare() {
    return false;
  }
  async initialize() {}
  async connect() {}
  async disconnect() {}
  async userStartedSpeaking() {}
  bufferBotAudio() {}
  async getAllMics() {
    return [];
  }
  async getAllCams() {
    return [];
  }
  async getAllSpeakers() {
    return [];
  }
  updateMic() {}
  updateCam() {}
  updateSpeaker() {}
  get selectedMic() {
    return {};
  }
  get selectedCam() {
    return {};
  }
  get selectedSpeaker() {
    return {};
  }
  enableMic() {}
  enableCam() {}
  enableScreenShare() {}
  get isMicEnabled() {
    return false;
  }
  get isCamEnabled() {
    return false;
  }
  get isSharingScreen() {
    return false;
  }
  tracks() {
    return { local: { audio: undefined, video: undefined } };
  }
}

/**
 * Start a session with the bot through the pipecat runner's /start route, and connect.
 *
 * @param {object} options
 * @param {string} [options.origin] The runner's origin (default: the page's own).
 * @param {object} [options.callbacks] PipecatClient callbacks (onTrackStarted, onBotReady...).
 * @returns {{client: PipecatClient, connected: Promise<unknown>}} The client, and a promise
 *   settled once it is connected (or has failed to).
 */
export function connectToBot({ origin = window.location.origin, callbacks = {} } = {}) {
  const client = new PipecatClient({
    transport: new SmallWebRTCTransport({
      mediaManager: new ReceiveOnlyMediaManager(),
      iceServers: [],
    }),
    enableMic: false,
    enableCam: false,
    callbacks,
  });
  const connected = client.startBotAndConnect({
    endpoint: `${origin}/start`,
    requestData: { transport: "webrtc" },
  });
  return { client, connected };
}
