//! `tendero transcribe`: recordings decoded and transcribed with the configured
//! Whisper model, with the speed of each step, to check that a model works.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Context;

use crate::config::SpeechSettings;
use crate::speech::audio;
use crate::speech::whisper::Whisper;

#[derive(Debug, clap::Args)]
pub struct TranscribeArgs {
    /// Recordings: WAV, MP3, OGG Vorbis or FLAC.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Decode (and transcribe) each file this many times; the figures are the median.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Text Whisper reads as said before each recording (e.g. the shop's words).
    #[arg(long)]
    pub prompt: Option<String>,
    /// Print one JSON object per file.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn transcribe(args: &TranscribeArgs, settings: &SpeechSettings) -> anyhow::Result<()> {
    let loading = Instant::now();
    let whisper = match &settings.whisper_model {
        Some(path) => Some(Whisper::load(
            path,
            &settings.whisper_language,
            settings.transcription_threads(),
        )?),
        None => {
            eprintln!(
                "no Whisper model configured (TENDERO_WHISPER_MODEL): measuring decoding only"
            );
            None
        }
    };
    let load_ms = loading.elapsed().as_secs_f64() * 1e3;
    if whisper.is_some() && !args.json {
        println!("model loaded in {load_ms:.0} ms");
    }
    let prompt = match (&whisper, args.prompt.as_deref()) {
        (Some(whisper), Some(text)) => whisper.prompt_tokens(text)?,
        _ => Vec::new(),
    };
    let never = Arc::new(AtomicBool::new(false));
    let median = |mut times: Vec<f64>| {
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    for file in &args.files {
        let bytes = bytes::Bytes::from(
            std::fs::read(file).with_context(|| format!("reading {}", file.display()))?,
        );
        let mut decode_ms = Vec::new();
        let mut decoded = None;
        for _ in 0..args.repeat.max(1) {
            let started = Instant::now();
            let audio = audio::decode(bytes.clone(), settings.voice_max_secs)
                .with_context(|| format!("decoding {}", file.display()))?;
            decode_ms.push(started.elapsed().as_secs_f64() * 1e3);
            decoded = Some(audio);
        }
        let audio = decoded.expect("decoded at least once");
        let audio_ms = audio.seconds() * 1e3;
        let decode_ms = median(decode_ms);
        let mut report = serde_json::json!({
            "file": file.display().to_string(),
            "format": audio.format,
            "source_rate": audio.source_rate,
            "channels": audio.channels,
            "audio_ms": audio_ms,
            "decode_ms": decode_ms,
            "decode_x_realtime": audio_ms / decode_ms.max(1e-6),
        });
        if let Some(whisper) = &whisper {
            let mut times = Vec::new();
            let mut text = String::new();
            let mut language = None;
            for _ in 0..args.repeat.max(1) {
                let started = Instant::now();
                let heard = whisper.transcribe(&audio.samples, &prompt, &never)?;
                times.push(started.elapsed().as_secs_f64() * 1e3);
                text = heard.text;
                language = heard.language;
            }
            let transcribe_ms = median(times);
            report["model_load_ms"] = serde_json::json!(load_ms);
            report["transcribe_ms"] = serde_json::json!(transcribe_ms);
            report["real_time_factor"] = serde_json::json!(transcribe_ms / audio_ms.max(1e-6));
            report["text"] = serde_json::json!(text);
            report["language"] = serde_json::json!(language);
        }
        if args.json {
            println!("{report}");
        } else {
            println!(
                "{}: {} {} Hz x{}, {:.2} s; decoded in {:.2} ms ({:.0}x real time){}",
                file.display(),
                audio.format,
                audio.source_rate,
                audio.channels,
                audio_ms / 1e3,
                decode_ms,
                audio_ms / decode_ms.max(1e-6),
                match report.get("transcribe_ms") {
                    Some(ms) => format!(
                        "; transcribed in {:.0} ms (real-time factor {:.3}): {:?}",
                        ms.as_f64().unwrap_or_default(),
                        report["real_time_factor"].as_f64().unwrap_or_default(),
                        report["text"].as_str().unwrap_or_default()
                    ),
                    None => String::new(),
                }
            );
        }
    }
    Ok(())
}
