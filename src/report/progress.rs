//! What `pipe run` shows while it works: an overall bar and a bar per running
//! instance (phase, epoch, loss, ETA) on a terminal; one line per finished
//! instance otherwise (CI logs).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::exec::job::ProgressLine;
use crate::exec::observer::Observer;
use crate::exec::summary::Status;

pub(crate) struct Ui {
    mp: MultiProgress,
    overall: ProgressBar,
    bars: Mutex<HashMap<usize, ProgressBar>>,
    quiet: bool,
    tty: bool,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl Ui {
    pub(crate) fn new(total: u64, quiet: bool) -> Ui {
        let tty = std::io::stderr().is_terminal() && !quiet;
        let target = if tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let mp = MultiProgress::with_draw_target(target);
        let overall = mp.add(ProgressBar::new(total));
        overall.set_style(style(
            "{prefix:>12} [{bar:30}] {pos}/{len} instances {elapsed_precise}",
        ));
        overall.set_prefix("pipe run");
        if tty {
            overall.enable_steady_tick(Duration::from_millis(500));
        }
        Ui {
            mp,
            overall,
            bars: Mutex::new(HashMap::new()),
            quiet,
            tty,
        }
    }

    fn line(&self, text: String) {
        if self.quiet {
            return;
        }
        if self.tty {
            let _ = self.mp.println(text);
        } else {
            eprintln!("{text}");
        }
    }

    fn finished_slot(&self, slot: usize) {
        if let Ok(mut b) = self.bars.lock() {
            if let Some(bar) = b.remove(&slot) {
                bar.finish_and_clear();
                self.mp.remove(&bar);
            }
        }
    }
}

impl Observer for Ui {
    fn cached(&self, label: &str) {
        self.overall.inc(1);
        if !self.tty && !self.quiet && std::env::var_os("PIPE_SHOW_CACHED").is_some() {
            eprintln!("  cached   {label}");
        }
    }

    fn skipped(&self, label: &str) {
        self.overall.inc(1);
        self.line(format!("  skipped  {label}"));
    }

    fn started(&self, slot: usize, label: &str) {
        if !self.tty {
            if !self.quiet {
                eprintln!("  start    {label}");
            }
            return;
        }
        let bar = self.mp.insert_before(&self.overall, ProgressBar::new(0));
        bar.set_style(style(
            "{prefix:>12.cyan} {msg} [{bar:20}] {pos}/{len} eta {eta}",
        ));
        bar.set_prefix("running");
        bar.set_message(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Ok(mut b) = self.bars.lock() {
            b.insert(slot, bar);
        }
    }

    fn progress(&self, slot: usize, line: &ProgressLine) {
        let bars = match self.bars.lock() {
            Ok(b) => b,
            Err(_) => return,
        };
        let Some(bar) = bars.get(&slot) else { return };
        match line {
            ProgressLine::Start { phase, total } => {
                bar.set_length(*total);
                bar.set_position(0);
                bar.reset_eta();
                bar.set_prefix(phase.clone());
            }
            ProgressLine::Update { done, message } => {
                bar.set_position(*done);
                let label = bar.message();
                let base = label.split(" — ").next().unwrap_or("").to_string();
                bar.set_message(format!("{base} — {message}"));
            }
        }
    }

    fn ran(&self, slot: usize, label: &str, seconds: f64) {
        self.finished_slot(slot);
        self.overall.inc(1);
        self.line(format!(
            "  ran      {label} ({})",
            crate::report::table::duration(seconds)
        ));
    }

    fn failed(&self, slot: Option<usize>, label: &str, status: &Status) {
        if let Some(slot) = slot {
            self.finished_slot(slot);
        }
        self.overall.inc(1);
        let why = match status {
            Status::Failed(e) => e.clone(),
            _ => String::new(),
        };
        // failures are shown even with -q
        if self.tty {
            let _ = self.mp.println(format!("  FAILED   {label}: {why}"));
        } else {
            eprintln!("  FAILED   {label}: {why}");
        }
    }

    fn interrupted(&self, running: usize) {
        let text = format!(
            "  interrupted: cancelling {running} running instance{} (completed ones stay cached)",
            if running == 1 { "" } else { "s" }
        );
        if self.tty {
            let _ = self.mp.println(text);
        } else {
            eprintln!("{text}");
        }
    }

    fn finish(&self) {
        self.overall.finish_and_clear();
        let _ = self.mp.clear();
    }
}
