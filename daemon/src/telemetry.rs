//! Logging setup: human-readable text for a terminal, JSON lines for the appliance journal.
//! Every request runs in a span carrying its request id, so each log line names it.
//!
//! Field values and messages often hold what a client typed (a username, a device name). In
//! the text format every control character in them is escaped here, at the one place all log
//! lines pass through, so a newline in a username cannot forge a second log line and an escape
//! sequence cannot repaint a terminal; no call site has to remember. The JSON format escapes
//! by itself.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

/// Output format of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber. `RUST_LOG` overrides the default level (info).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A second init (tests calling it twice) is harmless, so the error is ignored on purpose.
    let _ = match format {
        LogFormat::Text => text_builder().with_env_filter(filter).try_init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(false)
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}

/// Warnings and errors only, for one-shot commands whose stdout is their answer.
pub fn init_quiet() {
    let _ = text_builder()
        .with_env_filter(EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .try_init();
}

/// The text format: the default layout, with fields formatted by [`EscapingFields`].
fn text_builder() -> tracing_subscriber::fmt::SubscriberBuilder<EscapingFields> {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_target(false)
        // Colours only for a person at a terminal; a log file or the journal gets plain text.
        .with_ansi(std::io::stdout().is_terminal())
        .fmt_fields(EscapingFields)
}

/// Formats an event's or span's fields like the default text format (`message key=value …`,
/// strings quoted), then escapes control characters in the result.
#[derive(Debug, Clone, Copy, Default)]
pub struct EscapingFields;

impl<'w> FormatFields<'w> for EscapingFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = EscapingVisitor { out: String::new() };
        fields.record(&mut visitor);
        writer.write_str(&visitor.out)
    }
}

struct EscapingVisitor {
    out: String,
}

impl EscapingVisitor {
    fn separate(&mut self) {
        if !self.out.is_empty() {
            self.out.push(' ');
        }
    }
}

impl Visit for EscapingVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            // Quoted, as the default format does, so a value with spaces stays one value.
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        // Fields the `log` crate bridge adds; the default format hides them too.
        if name.starts_with("log.") {
            return;
        }
        self.separate();
        let rendered = if name == "message" {
            format!("{value:?}")
        } else {
            format!("{}={value:?}", name.strip_prefix("r#").unwrap_or(name))
        };
        escape_controls_into(&rendered, &mut self.out);
    }
}

/// Unicode's invisible direction marks and overrides: a right-to-left override in a username
/// makes the rest of a log line display reversed, so a line can be made to read as another.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Appends `s` with every control character (C0, DEL, C1), the Unicode line and paragraph
/// separators and the direction controls written as an escape (`\n`, `\r`, `\t`, `\u{1b}`), so the text stays on one line
/// and cannot carry terminal escape sequences.
pub fn escape_controls_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' || is_bidi_control(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn text_log(f: impl FnOnce()) -> String {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = text_builder()
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = captured.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn a_newline_in_a_field_cannot_forge_a_log_line() {
        let forged =
            "bob\n2026-12-02T08:00:00.000000Z  INFO the box was claimed username=\"admin\"";
        let out = text_log(|| {
            let span = tracing::info_span!("request", path = %format!("/x\n{forged}"));
            let _in = span.enter();
            tracing::warn!(username = %forged, quoted = forged, "failed sign-in for {forged}\r\u{1b}[2J");
        });
        assert_eq!(out.matches('\n').count(), 1, "one line only: {out:?}");
        assert!(out.ends_with('\n'));
        assert!(!out.contains('\r') && !out.contains('\u{1b}'), "{out:?}");
        assert!(out.contains("failed sign-in for bob\\n2026"), "{out:?}");
        assert!(out.contains("username=bob\\n2026"), "{out:?}");
        assert!(out.contains("\\u{1b}[2J"), "{out:?}");
    }

    #[test]
    fn direction_overrides_are_shown_not_obeyed() {
        let out = text_log(|| tracing::warn!(username = "evil\u{202e}nimda", "failed sign-in"));
        assert!(!out.contains('\u{202e}'), "{out:?}");
        assert!(out.contains("evil\\u{202e}nimda"), "{out:?}");
    }

    #[test]
    fn ordinary_fields_look_as_before() {
        let out = text_log(|| tracing::info!(status = 200u16, name = "pi 4", "request"));
        assert!(
            out.contains("INFO request status=200 name=\"pi 4\""),
            "{out:?}"
        );
    }
}
