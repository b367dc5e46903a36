//! Whisper transcription (whisper-rs over whisper.cpp): the model is loaded once and
//! shared; each transcription runs on the blocking pool with a decoder state of its
//! own, taken from a small pool so that its buffers are allocated once.

use std::ffi::c_void;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

/// Whisper works on windows of 30 s and is unreliable on less than a second: shorter
/// recordings are padded with silence to this many samples (1 s at 16 kHz).
const MIN_SAMPLES: usize = 16_000;

/// A segment Whisper itself rates more likely not speech than this is dropped: on
/// silence and noise the model writes plausible text ("www.…", the prompt's words).
const NO_SPEECH: f32 = 0.6;

/// A recording whose loudest 20 ms frame stays under this RMS (about -50 dBFS) is
/// silence: nothing is transcribed.
const SILENCE_RMS: f32 = 0.003;

/// Longest prompt: whisper.cpp keeps at most half its 448-token text context for it.
pub const MAX_PROMPT_TOKENS: usize = 220;

/// A loaded model.
pub struct Whisper {
    context: Arc<WhisperContext>,
    /// `None` detects the language of each recording.
    language: Option<String>,
    threads: i32,
    states: Mutex<Vec<WhisperState>>,
    multilingual: bool,
}

/// What Whisper heard.
#[derive(Debug, Clone)]
pub struct Heard {
    pub text: String,
    /// The language spoken (ISO 639-1), as configured or detected.
    pub language: Option<&'static str>,
}

impl Whisper {
    /// Loads a ggml model file; slow for the large models, so call it off the runtime.
    pub fn load(path: &Path, language: &str, threads: usize) -> anyhow::Result<Self> {
        whisper_rs::install_logging_hooks();
        let path_str = path
            .to_str()
            .context("the Whisper model path is not valid UTF-8")?;
        let context =
            WhisperContext::new_with_params(path_str, WhisperContextParameters::default())
                .map_err(|err| {
                    anyhow::anyhow!("loading the Whisper model {}: {err}", path.display())
                })?;
        let multilingual = context.is_multilingual();
        let language = match language.trim() {
            "auto" => None,
            lang => Some(lang.to_owned()),
        };
        if !multilingual && language.as_deref().is_some_and(|l| l != "en") {
            tracing::warn!(
                model = %path.display(),
                "the Whisper model is English-only: use a multilingual model for Spanish"
            );
        }
        Ok(Self {
            context: Arc::new(context),
            language,
            threads: i32::try_from(threads.max(1)).unwrap_or(i32::MAX),
            states: Mutex::new(Vec::new()),
            multilingual,
        })
    }

    pub fn multilingual(&self) -> bool {
        self.multilingual
    }

    pub fn language(&self) -> Option<&str> {
        self.language.as_deref()
    }

    pub fn threads(&self) -> i32 {
        self.threads
    }

    /// `text` as the model's tokens, for [`Self::transcribe`]'s prompt: at most
    /// [`MAX_PROMPT_TOKENS`], ending at the last whole word that fits.
    pub fn prompt_tokens(&self, text: &str) -> anyhow::Result<Vec<i32>> {
        let mut tokens = self
            .context
            .tokenize(text, text.len() + 8)
            .map_err(|err| anyhow::anyhow!("tokenizing the Whisper prompt: {err}"))?;
        if tokens.len() > MAX_PROMPT_TOKENS {
            tokens.truncate(MAX_PROMPT_TOKENS);
            // Drop the word cut in two: a word piece would bias toward a non-word.
            while let Some(&last) = tokens.last() {
                let starts_word = self
                    .context
                    .token_to_str_lossy(last)
                    .is_ok_and(|piece| piece.starts_with(' '));
                tokens.pop();
                if starts_word {
                    break;
                }
            }
        }
        Ok(tokens)
    }

    /// The text `tokens` stand for (what a prompt kept of its text).
    pub fn prompt_text(&self, tokens: &[i32]) -> String {
        tokens
            .iter()
            .filter_map(|&token| self.context.token_to_str_lossy(token).ok())
            .collect()
    }

    /// Transcribes 16 kHz mono samples; blocking. `prompt` (from
    /// [`Self::prompt_tokens`]) is text the recording is likely to resemble, e.g.
    /// the shop's words. Setting `abort` stops it early (the result is then an error).
    pub fn transcribe(
        &self,
        samples: &[f32],
        prompt: &[i32],
        abort: &Arc<AtomicBool>,
    ) -> anyhow::Result<Heard> {
        let mut state = match self.states.lock().expect("whisper states lock").pop() {
            Some(state) => state,
            None => self
                .context
                .create_state()
                .map_err(|err| anyhow::anyhow!("creating a Whisper state: {err}"))?,
        };
        let heard = self.run(&mut state, samples, prompt, abort);
        // A state is reusable after any run, failed or aborted: the next one resets it.
        self.states.lock().expect("whisper states lock").push(state);
        heard
    }

    fn run(
        &self,
        state: &mut WhisperState,
        samples: &[f32],
        prompt: &[i32],
        abort: &Arc<AtomicBool>,
    ) -> anyhow::Result<Heard> {
        if is_silence(samples) {
            return Ok(Heard {
                text: String::new(),
                language: self
                    .language
                    .as_deref()
                    .and_then(whisper_rs::get_lang_id)
                    .and_then(whisper_rs::get_lang_str),
            });
        }
        let padded;
        let samples = if samples.len() < MIN_SAMPLES {
            let mut with_silence = samples.to_vec();
            with_silence.resize(MIN_SAMPLES, 0.0);
            padded = with_silence;
            &padded[..]
        } else {
            samples
        };
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_language(Some(self.language.as_deref().unwrap_or("auto")));
        params.set_n_threads(self.threads);
        params.set_translate(false);
        params.set_no_context(true);
        params.set_suppress_blank(true);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_print_special(false);
        if !prompt.is_empty() {
            params.set_tokens(prompt);
        }
        // SAFETY: `should_abort` only reads the `AtomicBool` behind the pointer, and
        // `abort` (an `Arc` the caller holds) outlives `full`, the only call that uses it.
        unsafe {
            params.set_abort_callback(Some(should_abort));
            params.set_abort_callback_user_data(Arc::as_ptr(abort).cast_mut().cast::<c_void>());
        }
        let result = state.full(params, samples);
        if abort.load(Ordering::Relaxed) {
            anyhow::bail!("transcription stopped: the client went away");
        }
        result.map_err(|err| anyhow::anyhow!("Whisper failed: {err}"))?;
        let mut text = String::new();
        for segment in state.as_iter() {
            let piece = segment
                .to_str_lossy()
                .map_err(|err| anyhow::anyhow!("reading a Whisper segment: {err}"))?;
            let no_speech = segment.no_speech_probability();
            tracing::debug!(no_speech, text = %piece, "Whisper segment");
            if no_speech <= NO_SPEECH {
                text.push_str(&piece);
            }
        }
        let language = match &self.language {
            Some(_) => self
                .language
                .as_deref()
                .and_then(whisper_rs::get_lang_id)
                .and_then(whisper_rs::get_lang_str),
            None => whisper_rs::get_lang_str(state.full_lang_id_from_state()),
        };
        Ok(Heard {
            text: spoken_text(&text),
            language,
        })
    }
}

/// Whether no 20 ms frame of 16 kHz `samples` is louder than [`SILENCE_RMS`].
fn is_silence(samples: &[f32]) -> bool {
    samples.chunks(320).all(|frame| {
        let energy: f32 = frame.iter().map(|s| s * s).sum();
        (energy / frame.len() as f32).sqrt() < SILENCE_RMS
    })
}

/// whisper.cpp's abort callback: true stops the run.
unsafe extern "C" fn should_abort(flag: *mut c_void) -> bool {
    // SAFETY: the pointer is the `AtomicBool` set up in `Whisper::run`, alive for the run.
    unsafe { (*flag.cast::<AtomicBool>()).load(Ordering::Relaxed) }
}

/// The words in a transcript, without the annotations Whisper writes for what is
/// not speech (`[BLANK_AUDIO]`, `[Música]`, `(risas)`, `*tos*`).
pub fn spoken_text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut closing: Option<char> = None;
    for c in raw.chars() {
        match closing {
            Some(end) if c == end => closing = None,
            Some(_) => {}
            None => match c {
                '[' => closing = Some(']'),
                '(' => closing = Some(')'),
                '*' => closing = Some('*'),
                _ => out.push(c),
            },
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::{is_silence, spoken_text};

    #[test]
    fn silence_is_quieter_than_any_voice() {
        assert!(is_silence(&vec![0.0; 16_000]));
        assert!(is_silence(&vec![0.001; 16_000]));
        let mut quiet_word = vec![0.0; 16_000];
        for (i, sample) in quiet_word[8_000..8_800].iter_mut().enumerate() {
            *sample = 0.02 * (i as f32 * 0.2).sin();
        }
        assert!(!is_silence(&quiet_word));
        assert!(is_silence(&[]));
    }

    #[test]
    fn annotations_are_not_words() {
        assert_eq!(spoken_text(" [BLANK_AUDIO]"), "");
        assert_eq!(spoken_text("[Música] (risas) *tos*"), "");
        assert_eq!(
            spoken_text(" ¿Tienen taladros?  [ruido] Gracias."),
            "¿Tienen taladros? Gracias."
        );
    }
}
