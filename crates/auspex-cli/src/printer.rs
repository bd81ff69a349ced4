//! The one place that writes to the terminal: data to stdout, messages to
//! stderr, rendered as `error:` / `  Caused by:` / `hint:`.

use std::io::{self, Write};

use crate::commands::CliError;

/// Writes command output; remembers a broken pipe instead of panicking.
pub struct Printer {
    out: Box<dyn Write>,
    err: Box<dyn Write>,
    broken_pipe: bool,
}

impl Printer {
    /// A printer on the process's stdout and stderr.
    pub fn stdio() -> Printer {
        Printer {
            out: Box::new(io::stdout().lock()),
            err: Box::new(io::stderr()),
            broken_pipe: false,
        }
    }

    fn write(&mut self, to_err: bool, text: &str) {
        let w = if to_err { &mut self.err } else { &mut self.out };
        if let Err(e) = w.write_all(text.as_bytes()).and_then(|()| w.flush())
            && e.kind() == io::ErrorKind::BrokenPipe
        {
            self.broken_pipe = true;
        }
    }

    /// A line of data on stdout.
    pub fn line(&mut self, text: impl AsRef<str>) {
        let mut s = text.as_ref().to_owned();
        s.push('\n');
        self.write(false, &s);
    }

    /// A message line on stderr.
    pub fn note(&mut self, text: impl AsRef<str>) {
        let mut s = text.as_ref().to_owned();
        s.push('\n');
        self.write(true, &s);
    }

    /// Renders an error with its causes and hint on stderr.
    pub fn error(&mut self, err: &CliError) {
        let mut s = format!("error: {}\n", err.message);
        for cause in &err.causes {
            for (i, line) in cause.lines().enumerate() {
                if i == 0 {
                    s.push_str(&format!("  Caused by: {line}\n"));
                } else {
                    s.push_str(&format!("  {line}\n"));
                }
            }
        }
        if let Some(hint) = &err.hint {
            s.push_str(&format!("\nhint: {hint}\n"));
        }
        self.write(true, &s);
    }

    /// True once a write found stdout closed.
    pub fn broken_pipe(&self) -> bool {
        self.broken_pipe
    }
}
