//! A progress bar for people at a terminal (`indicatif`): rate and, when the total is known,
//! ETA. When stderr is not a terminal (cron, systemd, pipes) there is no bar and the callers keep
//! their periodic log lines.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Whether a bar would be shown: stderr is a terminal.
    pub fn wanted() -> bool {
        std::io::stderr().is_terminal()
    }

    /// A bar counting `unit`s towards `total` (a spinner with a rate when the total is unknown),
    /// or nothing when stderr is not a terminal.
    pub fn new(total: Option<u64>, unit: &str) -> Progress {
        if !Progress::wanted() {
            return Progress { bar: None };
        }
        let (bar, template) = match total {
            Some(total) => (
                ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()),
                format!("{{bar:30}} {{pos}}/{{len}} {unit} {{rate}} ETA {{eta}} {{msg}}"),
            ),
            None => (
                ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
                format!("{{spinner}} {{pos}} {unit} {{rate}} {{elapsed}} {{msg}}"),
            ),
        };
        if let Ok(style) = ProgressStyle::with_template(&template) {
            // A whole number per second: indicatif's own {per_sec} shows `4,079.1453/s`.
            bar.set_style(style.with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0}/s", state.per_sec());
                },
            ));
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar: Some(bar) }
    }

    pub fn active(&self) -> bool {
        self.bar.is_some()
    }

    pub fn set(&self, done: u64, message: String) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            bar.set_message(message);
        }
    }

    /// Leaves the final state on screen.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
