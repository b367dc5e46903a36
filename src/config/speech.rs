//! The `speech` section: the Whisper model, the language it listens for, and the
//! bounds on recordings and on transcriptions at once.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

/// Read by [`crate::speech`] (and by the transports, which refuse recordings over
/// the size limit before reading them).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SpeechSettings {
    /// A ggml Whisper model file; without one the voice endpoints answer 503.
    pub whisper_model: Option<PathBuf>,
    /// The language spoken to the shop (`es`, `en`, …), or `auto` to detect it.
    pub whisper_language: String,
    /// Whether Whisper is given the shop's words (categories, brands, product
    /// words) as its prompt.
    pub whisper_vocabulary: bool,
    /// How often the catalog is checked for changes to that vocabulary, in seconds.
    pub vocabulary_poll_secs: u64,
    /// Threads one transcription uses; 0 means one per core.
    pub whisper_threads: usize,
    /// Transcriptions run at once; more wait up to `transcription_queue_ms`, then
    /// are told the service is busy.
    pub max_transcriptions: usize,
    pub transcription_queue_ms: u64,
    /// Largest audio file accepted, in bytes, and longest recording, in seconds.
    pub voice_max_bytes: usize,
    pub voice_max_secs: u64,
}

impl Default for SpeechSettings {
    fn default() -> Self {
        Self {
            whisper_model: None,
            whisper_language: "es".to_owned(),
            whisper_vocabulary: true,
            vocabulary_poll_secs: 30,
            whisper_threads: 0,
            max_transcriptions: 1,
            transcription_queue_ms: 10_000,
            voice_max_bytes: 16 * 1024 * 1024,
            voice_max_secs: 60,
        }
    }
}

impl SpeechSettings {
    /// Threads one transcription uses (`whisper_threads`, or one per core).
    pub fn transcription_threads(&self) -> usize {
        match self.whisper_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if self.max_transcriptions == 0
            || self.voice_max_bytes == 0
            || self.voice_max_secs == 0
            || self.vocabulary_poll_secs == 0
        {
            return Err(ConfigError::Invalid(
                "TENDERO_MAX_TRANSCRIPTIONS, TENDERO_VOICE_MAX_BYTES, TENDERO_VOICE_MAX_SECS and \
                 TENDERO_VOCABULARY_POLL_SECS must be at least 1"
                    .to_owned(),
            ));
        }
        let language = self.whisper_language.trim();
        if language != "auto" && whisper_rs::get_lang_id(language).is_none() {
            return Err(ConfigError::Invalid(format!(
                "TENDERO_WHISPER_LANGUAGE must be `auto` or a language Whisper knows \
                 (es, en, pt, …), not `{language}`"
            )));
        }
        Ok(())
    }
}
