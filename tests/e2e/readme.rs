//! The README's shell blocks, read by the tests that run them as printed.

use std::path::Path;

/// The shell blocks of README.md from the first one after `marker` up to (not including)
/// the first one after `until` (or the next `until`-less heading's end: every block after
/// `marker` when `until` is `None`): each block a list of commands, comments removed and
/// lines ending in `|` joined with the next.
pub(crate) fn blocks(marker: &str, until: Option<&str>) -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let after = readme
        .split_once(marker)
        .unwrap_or_else(|| panic!("README.md no longer says {marker:?}"))
        .1;
    let section = match until {
        Some(u) => after.split_once(u).map_or(after, |(s, _)| s),
        None => after,
    };
    section
        .split("```sh\n")
        .skip(1)
        .filter_map(|part| part.split_once("```").map(|(b, _)| b))
        .map(commands)
        .collect()
}

/// The commands of one block.
fn commands(block: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut pending = String::new();
    for line in block.lines() {
        let code = strip_comment(line).trim().to_owned();
        if code.is_empty() {
            continue;
        }
        pending.push_str(&code);
        if code.ends_with('|') {
            pending.push(' ');
            continue;
        }
        out.push(std::mem::take(&mut pending));
    }
    out
}

/// The line without a trailing `# comment` (a `#` inside quotes is kept).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if i == 0 || line[..i].ends_with(' ') => return &line[..i],
            _ => {}
        }
    }
    line
}

/// Shell words: split on spaces, with single and double quotes grouping (no escapes or
/// expansions: the README uses none in its commands).
pub(crate) fn words(command: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut in_word = false;
    for c in command.chars() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, ' ') => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (_, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}
