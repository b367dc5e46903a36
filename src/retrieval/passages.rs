//! Cutting shop documents (Markdown or plain text) into passages, each one chunk
//! of the index.
//!
//! A chunk never crosses a heading: sections are cut into paragraphs, paragraphs are
//! packed up to [`TARGET_CHARS`], and each chunk after the first of a section starts
//! with the previous chunk's last paragraph (or its tail), so an answer that
//! straddles a cut is still found whole in one chunk. Every chunk carries the
//! document title and its section heading, which is what a question usually names.

/// Preferred chunk length in characters.
pub const TARGET_CHARS: usize = 800;
/// Characters carried over from the previous chunk of the same section.
pub const OVERLAP_CHARS: usize = 200;

/// One piece of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passage {
    /// The section heading ("" before the first heading).
    pub heading: String,
    /// The text searched and embedded, headed by `title — heading`.
    pub text: String,
}

/// The document title: its first `#` heading, else `fallback` (the file name).
pub fn title(text: &str, fallback: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("# "))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| fallback.to_owned())
}

/// Cuts `text` into chunks (see the module docs).
pub fn chunk(title: &str, text: &str) -> Vec<Passage> {
    let mut chunks = Vec::new();
    for (heading, paragraphs) in sections(text) {
        let head = if heading.is_empty() || heading == title {
            title.to_owned()
        } else {
            format!("{title} — {heading}")
        };
        let mut body = String::new();
        let mut last = String::new();
        for paragraph in paragraphs.into_iter().flat_map(split_long) {
            if !body.is_empty() && body.len() + paragraph.len() + 2 > TARGET_CHARS {
                chunks.push(Passage {
                    heading: heading.clone(),
                    text: format!("{head}\n{body}"),
                });
                body = overlap(&last);
            }
            if !body.is_empty() {
                body.push_str("\n\n");
            }
            body.push_str(&paragraph);
            last = paragraph;
        }
        if !body.trim().is_empty() {
            chunks.push(Passage {
                heading,
                text: format!("{head}\n{body}"),
            });
        }
    }
    chunks
}

/// Sections as (heading, paragraphs); the document title line itself is skipped.
fn sections(text: &str) -> Vec<(String, Vec<String>)> {
    let mut sections: Vec<(String, Vec<String>)> = vec![(String::new(), Vec::new())];
    let mut paragraph = String::new();
    let flush = |paragraph: &mut String, sections: &mut Vec<(String, Vec<String>)>| {
        let p = paragraph.trim();
        if !p.is_empty() {
            sections
                .last_mut()
                .expect("one section")
                .1
                .push(p.to_owned());
        }
        paragraph.clear();
    };
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(heading) = heading_of(trimmed) {
            flush(&mut paragraph, &mut sections);
            sections.push((heading.to_owned(), Vec::new()));
        } else if trimmed.is_empty() {
            flush(&mut paragraph, &mut sections);
        } else {
            if !paragraph.is_empty() {
                paragraph.push('\n');
            }
            paragraph.push_str(trimmed);
        }
    }
    flush(&mut paragraph, &mut sections);
    sections.retain(|(_, paragraphs)| !paragraphs.is_empty());
    sections
}

fn heading_of(line: &str) -> Option<&str> {
    let hashes = line.chars().take_while(|c| *c == '#').count();
    if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
        Some(line[hashes..].trim())
    } else {
        None
    }
}

/// A paragraph longer than a chunk, cut at sentence ends (or spaces).
fn split_long(paragraph: String) -> Vec<String> {
    if paragraph.len() <= TARGET_CHARS {
        return vec![paragraph];
    }
    let mut pieces = Vec::new();
    let mut rest = paragraph.as_str();
    while rest.len() > TARGET_CHARS {
        let window = floor_char_boundary(rest, TARGET_CHARS);
        let cut = rest[..window]
            .rfind(". ")
            .map(|i| i + 1)
            .or_else(|| rest[..window].rfind(' '))
            .filter(|&i| i > 0)
            .unwrap_or(window);
        pieces.push(rest[..cut].trim().to_owned());
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() {
        pieces.push(rest.to_owned());
    }
    pieces
}

/// The start of the next chunk: the whole last paragraph when short, else its tail.
fn overlap(last: &str) -> String {
    if last.len() <= OVERLAP_CHARS {
        return last.to_owned();
    }
    let start = ceil_char_boundary(last, last.len() - OVERLAP_CHARS);
    let tail = &last[start..];
    match tail.find(' ') {
        Some(space) => tail[space + 1..].to_owned(),
        None => tail.to_owned(),
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_follow_headings_and_carry_the_title() {
        let text = "# Envíos\n\nIntro corta.\n\n## Costos\n\nEl envío cuesta 12.000 pesos.\n\n\
                    ## Tiempos\n\nBogotá: 1 día.\nMedellín: 2 días.\n";
        let title = title(text, "envios.md");
        assert_eq!(title, "Envíos");
        let chunks = chunk(&title, text);
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[0].text, "Envíos\nIntro corta.");
        assert_eq!(chunks[1].heading, "Costos");
        assert!(chunks[1].text.starts_with("Envíos — Costos\n"));
        assert!(chunks[2].text.contains("Medellín: 2 días."));
    }

    #[test]
    fn long_sections_split_with_overlap() {
        let paragraph = |n: usize| format!("Párrafo {n}: {}", "palabra ".repeat(40).trim_end());
        let body: Vec<String> = (0..8).map(paragraph).collect();
        let text = format!("# Guía\n\n## Garantía\n\n{}", body.join("\n\n"));
        let chunks = chunk("Guía", &text);
        assert!(chunks.len() >= 3, "{}", chunks.len());
        for pair in chunks.windows(2) {
            // The next chunk starts with the end of the previous one.
            let first_paragraph = pair[1].text.lines().nth(1).unwrap();
            assert!(pair[0].text.contains(first_paragraph), "{first_paragraph}");
        }
        for c in &chunks {
            assert!(
                c.text.len() <= TARGET_CHARS + OVERLAP_CHARS + 40,
                "{}",
                c.text.len()
            );
        }
        // Every paragraph lands somewhere.
        for n in 0..8 {
            assert!(
                chunks
                    .iter()
                    .any(|c| c.text.contains(&format!("Párrafo {n}:")))
            );
        }
    }

    #[test]
    fn a_huge_paragraph_is_cut_at_sentences() {
        let text = "Frase número uno del texto largo. ".repeat(80);
        let chunks = chunk("Doc", &text);
        assert!(chunks.len() > 1);
        assert!(chunks.iter().all(|c| c.text.len() < TARGET_CHARS * 2));
    }
}
