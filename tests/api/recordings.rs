//! Recordings made by the tests: WAV written here sample by sample (tones and
//! silence in every PCM width and float, any rate and channel count), converted to
//! MP3, OGG Vorbis and FLAC by sox, and Spanish speech from espeak-ng. `make test`
//! installs sox and espeak-ng.

use std::path::Path;
use std::process::Command;

/// How WAV samples are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sample {
    U8,
    I16,
    I24,
    I32,
    F32,
}

impl Sample {
    fn bytes(self) -> u16 {
        match self {
            Self::U8 => 1,
            Self::I16 => 2,
            Self::I24 => 3,
            Self::I32 | Self::F32 => 4,
        }
    }
}

/// What the recording contains.
#[derive(Debug, Clone, Copy)]
pub enum Signal {
    Tone(f32),
    Silence,
}

/// A WAV file: `seconds` of `signal` at `rate` Hz on `channels` channels.
pub fn wav(signal: Signal, seconds: f32, rate: u32, channels: u16, sample: Sample) -> Vec<u8> {
    let frames = (seconds * rate as f32).round() as usize;
    let width = sample.bytes();
    let data_len = frames * usize::from(channels) * usize::from(width);
    let mut out = Vec::with_capacity(46 + data_len);
    let format_tag: u16 = if sample == Sample::F32 { 3 } else { 1 };
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(38 + data_len as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&18u32.to_le_bytes());
    out.extend_from_slice(&format_tag.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * u32::from(channels) * u32::from(width)).to_le_bytes());
    out.extend_from_slice(&(channels * width).to_le_bytes());
    out.extend_from_slice(&(width * 8).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data_len as u32).to_le_bytes());
    for i in 0..frames {
        let value = match signal {
            Signal::Tone(hz) => 0.4 * (i as f32 / rate as f32 * hz * std::f32::consts::TAU).sin(),
            Signal::Silence => 0.0,
        };
        for _ in 0..channels {
            match sample {
                Sample::U8 => out.push((128.0 + value * 127.0) as u8),
                Sample::I16 => out.extend_from_slice(&((value * 32_767.0) as i16).to_le_bytes()),
                Sample::I24 => {
                    out.extend_from_slice(&((value * 8_388_607.0) as i32).to_le_bytes()[..3]);
                }
                Sample::I32 => {
                    out.extend_from_slice(&((value * 2_147_483_647.0) as i32).to_le_bytes());
                }
                Sample::F32 => out.extend_from_slice(&value.to_le_bytes()),
            }
        }
    }
    out
}

fn require(tool: &str, package: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{tool} is not installed: install the Debian package {package} (make test does)"
    );
}

/// `wav` encoded by sox as `extension` (`mp3`, `ogg`, `flac`).
pub fn encode(wav: &[u8], extension: &str) -> Vec<u8> {
    require("sox", "sox and libsox-fmt-mp3");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.wav");
    let output = dir.path().join(format!("out.{extension}"));
    std::fs::write(&input, wav).unwrap();
    let status = Command::new("sox")
        .arg(&input)
        .arg(&output)
        .status()
        .expect("running sox");
    assert!(status.success(), "sox could not write {extension}");
    std::fs::read(&output).unwrap()
}

/// Spanish speech from espeak-ng, as WAV (22,050 Hz mono).
pub fn speech(text: &str) -> Vec<u8> {
    spoken("es", 175, text)
}

/// `text` said by espeak-ng's `voice` (`es-419`, `en-us`…) at `words_per_minute`.
pub fn spoken(voice: &str, words_per_minute: u32, text: &str) -> Vec<u8> {
    require("espeak-ng", "espeak-ng");
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("voz.wav");
    let status = Command::new("espeak-ng")
        .args(["-v", voice, "-s", &words_per_minute.to_string(), "-w"])
        .arg(&output)
        .arg(text)
        .status()
        .expect("running espeak-ng");
    assert!(status.success(), "espeak-ng failed");
    std::fs::read(&output).unwrap()
}

/// Writes `bytes` to a file in `dir` (for the Socket.IO client, which reads files).
pub fn save(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}
