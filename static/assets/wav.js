// Recording to 16 kHz mono WAV in the browser: the microphone is recorded with
// MediaRecorder, the recording decoded by the browser, mixed down and resampled
// by an OfflineAudioContext, and written as 16-bit PCM WAV (what Whisper hears).
"use strict";

window.TenderoWav = (() => {
  const RATE = 16000;

  /** Starts recording; resolves to an object whose `stop()` resolves to a WAV Blob. */
  async function record() {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const recorder = new MediaRecorder(stream);
    const pieces = [];
    recorder.ondataavailable = (event) => {
      if (event.data.size > 0) pieces.push(event.data);
    };
    const stopped = new Promise((resolve) => {
      recorder.onstop = resolve;
    });
    recorder.start(250);
    return {
      async stop() {
        recorder.stop();
        await stopped;
        stream.getTracks().forEach((track) => track.stop());
        const recorded = new Blob(pieces, { type: recorder.mimeType });
        return toWav(await recorded.arrayBuffer());
      },
      cancel() {
        recorder.stop();
        stream.getTracks().forEach((track) => track.stop());
      },
    };
  }

  /** Any audio the browser decodes, as a 16 kHz mono 16-bit WAV Blob. */
  async function toWav(encoded) {
    const context = new AudioContext();
    let decoded;
    try {
      decoded = await context.decodeAudioData(encoded);
    } finally {
      context.close();
    }
    const frames = Math.max(1, Math.ceil(decoded.duration * RATE));
    const offline = new OfflineAudioContext(1, frames, RATE);
    const source = offline.createBufferSource();
    source.buffer = decoded;
    source.connect(offline.destination);
    source.start();
    const mono = (await offline.startRendering()).getChannelData(0);
    return new Blob([encode(mono)], { type: "audio/wav" });
  }

  /** Float samples in [-1, 1] as a 16-bit PCM WAV file at 16 kHz. */
  function encode(samples) {
    const buffer = new ArrayBuffer(44 + samples.length * 2);
    const view = new DataView(buffer);
    const text = (offset, value) => {
      for (let i = 0; i < value.length; i++) view.setUint8(offset + i, value.charCodeAt(i));
    };
    text(0, "RIFF");
    view.setUint32(4, 36 + samples.length * 2, true);
    text(8, "WAVE");
    text(12, "fmt ");
    view.setUint32(16, 16, true);
    view.setUint16(20, 1, true); // PCM
    view.setUint16(22, 1, true); // mono
    view.setUint32(24, RATE, true);
    view.setUint32(28, RATE * 2, true);
    view.setUint16(32, 2, true);
    view.setUint16(34, 16, true);
    text(36, "data");
    view.setUint32(40, samples.length * 2, true);
    for (let i = 0; i < samples.length; i++) {
      const s = Math.max(-1, Math.min(1, samples[i]));
      view.setInt16(44 + i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
    return buffer;
  }

  return { record, toWav, encode, RATE };
})();
