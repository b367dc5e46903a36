//! Audio in: any container and codec symphonia reads here (WAV and AIFF PCM of any
//! width, float or ADPCM; MP3; OGG Vorbis; FLAC; ), decoded,
//! mixed down to mono and resampled to the 16 kHz Whisper listens at.
//!
//! The format is recognised from the bytes themselves, never from a file name. A
//! recording longer than the limit is refused as soon as its header or its decoded
//! length shows it, before the rest is decoded.

use std::io::{Cursor, ErrorKind};

use bytes::Bytes;
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

/// The sample rate Whisper expects.
pub const WHISPER_RATE: u32 = 16_000;

/// Frames the resampler works on at a time.
const RESAMPLE_CHUNK: usize = 1024;

/// Packets that fail to decode before a recording counts as corrupt: the first
/// frames of an MP3 often fail (the bit reservoir refers to data before the cut).
const TOLERATED_BAD_PACKETS: usize = 2;

/// A recording ready for Whisper.
#[derive(Debug)]
pub struct Audio {
    /// Mono samples at 16 kHz, in [-1, 1].
    pub samples: Vec<f32>,
    /// The container, as symphonia names it (`wav`, `mp3`, `ogg`, `flac`…).
    pub format: &'static str,
    pub source_rate: u32,
    pub channels: usize,
}

impl Audio {
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(WHISPER_RATE)
    }
}

/// Why a recording cannot be used.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum AudioError {
    /// Not a format this server reads (or not audio at all).
    #[error("{0}")]
    NotAudio(String),
    /// A known format, but truncated or damaged.
    #[error("{0}")]
    Corrupt(String),
    /// Longer than the configured limit.
    #[error("el audio dura más de {max_secs} s")]
    TooLong { max_secs: u64 },
}

/// Decodes a whole recording to 16 kHz mono, refusing one longer than `max_secs`.
pub fn decode(bytes: Bytes, max_secs: u64) -> Result<Audio, AudioError> {
    if bytes.is_empty() {
        return Err(AudioError::Corrupt(
            "el archivo de audio está vacío".to_owned(),
        ));
    }
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes)), Default::default());
    let mut reader = symphonia::default::get_probe()
        .probe(
            &Hint::new(),
            source,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|err| match err {
            SymphoniaError::Unsupported(_) => AudioError::NotAudio(
                "no es un audio en un formato admitido (WAV, MP3, OGG Vorbis, FLAC)".to_owned(),
            ),
            other => corrupt(&other),
        })?;
    // symphonia calls WAV "wave"; clients know it as wav.
    let format = match reader.format_info().short_name {
        "wave" => "wav",
        other => other,
    };
    let (track_id, params, header_frames) = {
        let track = reader
            .default_track(TrackType::Audio)
            .ok_or_else(|| AudioError::NotAudio("el archivo no tiene una pista de audio".into()))?;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .cloned()
            .ok_or_else(|| AudioError::NotAudio("la pista no es de audio".into()))?;
        (track.id, params, track.num_frames)
    };
    let mut rate = params.sample_rate.unwrap_or(0);
    let mut channels = params.channels.as_ref().map_or(0, |c| c.count());
    if let (Some(frames), true) = (header_frames, rate > 0)
        && frames > max_secs * u64::from(rate)
    {
        return Err(AudioError::TooLong { max_secs });
    }
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|err| match err {
            SymphoniaError::Unsupported(_) => AudioError::NotAudio(format!(
                "el códec de audio de este archivo {format} no está admitido"
            )),
            other => corrupt(&other),
        })?;

    let mut mono: Vec<f32> = Vec::new();
    let mut interleaved: Vec<f32> = Vec::new();
    let mut bad_packets = 0usize;
    loop {
        let packet = match reader.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) | Err(SymphoniaError::ResetRequired) => break,
            Err(SymphoniaError::IoError(err)) if err.kind() == ErrorKind::UnexpectedEof => {
                return Err(AudioError::Corrupt(
                    "el audio está incompleto (el archivo se cortó)".to_owned(),
                ));
            }
            Err(err) => return Err(corrupt(&err)),
        };
        if packet.track_id != track_id {
            continue;
        }
        let buffer = match decoder.decode(&packet) {
            Ok(buffer) => buffer,
            Err(SymphoniaError::DecodeError(_) | SymphoniaError::IoError(_)) => {
                bad_packets += 1;
                if bad_packets > TOLERATED_BAD_PACKETS {
                    return Err(AudioError::Corrupt(
                        "el audio está dañado: no se pudo decodificar".to_owned(),
                    ));
                }
                continue;
            }
            Err(err) => return Err(corrupt(&err)),
        };
        if buffer.frames() == 0 {
            continue;
        }
        rate = buffer.spec().rate();
        channels = buffer.num_planes().max(1);
        buffer.copy_to_vec_interleaved::<f32>(&mut interleaved);
        let scale = 1.0 / channels as f32;
        mono.extend(
            interleaved
                .chunks_exact(channels)
                .map(|frame| clean(frame.iter().sum::<f32>() * scale)),
        );
        if rate > 0 && mono.len() as u64 > max_secs * u64::from(rate) {
            return Err(AudioError::TooLong { max_secs });
        }
    }
    if mono.is_empty() || rate == 0 {
        return Err(AudioError::Corrupt(
            "el audio no contiene sonido decodificable".to_owned(),
        ));
    }
    let samples = resample(&mono, rate)?;
    Ok(Audio {
        samples,
        format,
        source_rate: rate,
        channels,
    })
}

/// A sample Whisper can take: finite and within [-1, 1].
fn clean(sample: f32) -> f32 {
    if sample.is_finite() {
        sample.clamp(-1.0, 1.0)
    } else {
        0.0
    }
}

fn corrupt(err: &SymphoniaError) -> AudioError {
    tracing::debug!(error = %err, "audio refused");
    AudioError::Corrupt(match err {
        SymphoniaError::IoError(io) if io.kind() == ErrorKind::UnexpectedEof => {
            "el audio está incompleto (el archivo se cortó)".to_owned()
        }
        _ => format!("el audio está dañado: {err}"),
    })
}

/// Resamples mono audio to 16 kHz (band-limited, FFT-based; the whole recording at once).
pub fn resample(mono: &[f32], rate: u32) -> Result<Vec<f32>, AudioError> {
    if rate == WHISPER_RATE {
        return Ok(mono.to_vec());
    }
    let failed = |err: &dyn std::fmt::Display| {
        AudioError::Corrupt(format!(
            "no se pudo convertir el audio de {rate} Hz a 16 kHz: {err}"
        ))
    };
    let input = InterleavedSlice::new(mono, 1, mono.len()).map_err(|e| failed(&e))?;
    let mut resampler = Fft::<f32>::new(
        rate as usize,
        WHISPER_RATE as usize,
        RESAMPLE_CHUNK,
        1,
        FixedSync::Both,
    )
    .map_err(|e| failed(&e))?;
    let output = resampler
        .process_all(&input, mono.len(), None)
        .map_err(|e| failed(&e))?;
    Ok(output.take_data())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16-bit PCM WAV file of `frames` frames of a 440 Hz tone.
    fn wav(rate: u32, channels: u16, frames: usize) -> Vec<u8> {
        let data_len = frames * usize::from(channels) * 2;
        let mut out = Vec::with_capacity(44 + data_len);
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + data_len as u32).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&channels.to_le_bytes());
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * u32::from(channels) * 2).to_le_bytes());
        out.extend_from_slice(&(channels * 2).to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&(data_len as u32).to_le_bytes());
        for i in 0..frames {
            let t = i as f32 / rate as f32;
            let v = ((t * 440.0 * std::f32::consts::TAU).sin() * 12_000.0) as i16;
            for _ in 0..channels {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    #[test]
    fn a_stereo_44k_wav_becomes_16k_mono_of_the_same_length() {
        let audio = decode(Bytes::from(wav(44_100, 2, 44_100)), 60).expect("decodes");
        assert_eq!(audio.format, "wav");
        assert_eq!(audio.source_rate, 44_100);
        assert_eq!(audio.channels, 2);
        assert!(
            (audio.samples.len() as i64 - 16_000).abs() <= 1,
            "{}",
            audio.samples.len()
        );
        let peak = audio.samples.iter().fold(0f32, |m, s| m.max(s.abs()));
        assert!(peak > 0.3 && peak <= 1.0, "peak {peak}");
    }

    #[test]
    fn a_16k_recording_is_not_resampled() {
        let audio = decode(Bytes::from(wav(16_000, 1, 8_000)), 60).expect("decodes");
        assert_eq!(audio.samples.len(), 8_000);
    }

    #[test]
    fn too_long_is_refused_from_the_header() {
        let err = decode(Bytes::from(wav(8_000, 1, 8_000 * 3)), 2).unwrap_err();
        assert_eq!(err, AudioError::TooLong { max_secs: 2 });
    }

    #[test]
    fn text_is_not_audio_and_a_cut_wav_is_corrupt() {
        let err = decode(Bytes::from_static(b"hola, esto no es audio"), 60).unwrap_err();
        assert!(matches!(err, AudioError::NotAudio(_)), "{err:?}");
        let mut cut = wav(16_000, 1, 16_000);
        cut.truncate(cut.len() / 2);
        let err = decode(Bytes::from(cut), 60).unwrap_err();
        assert!(matches!(err, AudioError::Corrupt(_)), "{err:?}");
        let err = decode(Bytes::new(), 60).unwrap_err();
        assert!(matches!(err, AudioError::Corrupt(_)), "{err:?}");
    }
}
