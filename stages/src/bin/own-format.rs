//! An example converter for a dataset in "your own format", run by a `run:` stage in
//! `pipelines/dataset-swap.yaml`. Copy it (or write the same in any language) for
//! your dataset: what a converter must produce is the two tables of docs/data.md,
//! `recordings.parquet` and `labels.parquet`, in the folder `$PIPE_OUT`.
//!
//! The format it reads — a typical lab export:
//!
//! ```text
//! <folder>/ratings.csv          subject,trial,valence,arousal      (self-ratings 1-9)
//! <folder>/s01/t01.csv          Fp1,AF3,...,hEOG,vEOG              (header: channel names)
//!                               -3.2,1.7,...                       (one row per sample)
//! ```
//!
//! Each trial file starts with `--baseline-s` seconds of pre-stimulus baseline (the
//! `windows` stage drops or subtracts it), sampled at `--rate` Hz.
//!
//! ```text
//! cargo run -q --bin own-format -- convert <folder> <out> [--rate 128]
//! cargo run -q --bin own-format -- demo <folder> [--subjects 2 --trials 10 --seconds 30 --seed 0]
//! ```
//! `demo` writes such a folder from the synthetic DEAP model, so the example runs
//! without any download. Errors name the file and line; the exit status is 1.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use stages::data::channels::DEAP_CHANNELS;
use stages::data::synthetic_deap::{generate_subject, SynthConfig};
use stages::data::tables::{
    channel_kind, write_labels, ChannelRecord, LabelRecord, RecordingsWriter, LABELS, RECORDINGS,
};

const DATASET: &str = "own";
/// The channels `demo` writes: the method's EEG and EOG (DEAP names).
const DEMO_CHANNELS: usize = 34;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("convert") if args.len() >= 3 => {
            opts(&args[3..]).and_then(|o| convert(Path::new(&args[1]), Path::new(&args[2]), &o))
        }
        Some("demo") if args.len() >= 2 => opts(&args[2..]).and_then(|o| demo(Path::new(&args[1]), &o)),
        _ => Err("usage: own-format convert <folder> <out> [--rate HZ] | demo <folder> [--subjects N --trials N --seconds S --seed N]".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("own-format: {e}");
            ExitCode::FAILURE
        }
    }
}

fn opts(args: &[String]) -> Result<BTreeMap<String, f64>, String> {
    let mut o = BTreeMap::from([
        ("rate".to_string(), 128.0),
        ("subjects".to_string(), 2.0),
        ("trials".to_string(), 10.0),
        ("seconds".to_string(), 30.0),
        ("seed".to_string(), 0.0),
        ("baseline-s".to_string(), 3.0),
    ]);
    for pair in args.chunks(2) {
        let key = pair[0].trim_start_matches("--");
        let slot = o
            .get_mut(key)
            .ok_or_else(|| format!("unknown option {}", pair[0]))?;
        let v = pair
            .get(1)
            .ok_or_else(|| format!("{} needs a value", pair[0]))?;
        *slot = v
            .parse()
            .map_err(|_| format!("{}: not a number: {v}", pair[0]))?;
    }
    Ok(o)
}

fn io_err(path: &Path, e: std::io::Error) -> String {
    format!("{}: {e}", path.display())
}

/// (subject, trial) → (valence, arousal).
type Ratings = BTreeMap<(u16, u16), (f32, f32)>;

/// `<folder>/ratings.csv`.
fn read_ratings(folder: &Path) -> Result<Ratings, String> {
    let path = folder.join("ratings.csv");
    let text = fs::read_to_string(&path).map_err(|e| io_err(&path, e))?;
    let mut lines = text.lines().enumerate();
    let header = lines.next().map(|(_, h)| h.trim()).unwrap_or("");
    if header != "subject,trial,valence,arousal" {
        return Err(format!(
            "{}:1: expected the header `subject,trial,valence,arousal`, found `{header}`",
            path.display()
        ));
    }
    let mut out = BTreeMap::new();
    for (i, line) in lines.filter(|(_, l)| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let bad = || {
            format!(
                "{}:{}: expected 4 numbers, found `{line}`",
                path.display(),
                i + 1
            )
        };
        if f.len() != 4 {
            return Err(bad());
        }
        let s: u16 = f[0].parse().map_err(|_| bad())?;
        let t: u16 = f[1].parse().map_err(|_| bad())?;
        let v: f32 = f[2].parse().map_err(|_| bad())?;
        let a: f32 = f[3].parse().map_err(|_| bad())?;
        if !(1.0..=9.0).contains(&v) || !(1.0..=9.0).contains(&a) {
            return Err(format!(
                "{}:{}: ratings must lie in 1-9",
                path.display(),
                i + 1
            ));
        }
        out.insert((s, t), (v, a));
    }
    if out.is_empty() {
        return Err(format!("{}: no ratings", path.display()));
    }
    Ok(out)
}

/// One trial file → (channel names, one sample vector per channel).
fn read_trial(path: &Path) -> Result<(Vec<String>, Vec<Vec<f32>>), String> {
    let text = fs::read_to_string(path).map_err(|e| io_err(path, e))?;
    let mut lines = text.lines();
    let names: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if names.is_empty() {
        return Err(format!(
            "{}:1: no channel names in the header",
            path.display()
        ));
    }
    let mut cols = vec![Vec::new(); names.len()];
    for (i, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let mut n = 0;
        for (c, field) in line.split(',').enumerate() {
            let col = cols.get_mut(c).ok_or_else(|| {
                format!("{}:{}: more values than channels", path.display(), i + 2)
            })?;
            let v: f32 = field.trim().parse().map_err(|_| {
                format!(
                    "{}:{}: `{}` is not a number",
                    path.display(),
                    i + 2,
                    field.trim()
                )
            })?;
            if !v.is_finite() {
                return Err(format!(
                    "{}:{}: channel {} is {v}",
                    path.display(),
                    i + 2,
                    names[c]
                ));
            }
            col.push(v);
            n += 1;
        }
        if n != names.len() {
            return Err(format!(
                "{}:{}: {n} values for {} channels",
                path.display(),
                i + 2,
                names.len()
            ));
        }
    }
    Ok((names, cols))
}

fn convert(folder: &Path, out: &Path, o: &BTreeMap<String, f64>) -> Result<(), String> {
    let ratings = read_ratings(folder)?;
    fs::create_dir_all(out).map_err(|e| io_err(out, e))?;
    let rec_path = out.join(RECORDINGS);
    let source = folder.display().to_string();
    let mut writer = RecordingsWriter::create(
        &rec_path,
        DATASET,
        &[
            ("source", source),
            ("reader", "pipe own-format example 1".into()),
        ],
    )
    .map_err(|e| e.to_string())?;
    let mut labels = Vec::new();
    let mut subject_now = None;
    for (&(subject, trial), &(valence, arousal)) in &ratings {
        if subject_now.is_some_and(|s| s != subject) {
            writer.flush().map_err(|e| e.to_string())?; // one row group per subject
        }
        subject_now = Some(subject);
        let path: PathBuf = folder.join(format!("s{subject:02}/t{trial:02}.csv"));
        let (names, cols) = read_trial(&path)?;
        for (name, samples) in names.iter().zip(&cols) {
            writer.push(&ChannelRecord {
                subject,
                trial,
                channel: name,
                kind: channel_kind(name),
                sample_rate: o["rate"] as f32,
                samples,
            });
        }
        labels.push(LabelRecord {
            subject,
            trial,
            valence,
            arousal,
            dominance: None,
            liking: None,
        });
    }
    writer.finish().map_err(|e| e.to_string())?;
    write_labels(&out.join(LABELS), DATASET, &labels).map_err(|e| e.to_string())?;
    println!(
        "{} trials from {} → {}",
        labels.len(),
        folder.display(),
        out.display()
    );
    Ok(())
}

fn demo(folder: &Path, o: &BTreeMap<String, f64>) -> Result<(), String> {
    let cfg = SynthConfig {
        subjects: o["subjects"] as usize,
        trials: o["trials"] as usize,
        seconds: o["seconds"],
        baseline_s: o["baseline-s"],
        sample_rate: o["rate"],
        seed: o["seed"] as u64,
        ..SynthConfig::default()
    };
    let samples = cfg.samples();
    let mut ratings = String::from("subject,trial,valence,arousal\n");
    for s in 1..=cfg.subjects as u16 {
        let subj = generate_subject(&cfg, s - 1);
        let dir = folder.join(format!("s{s:02}"));
        fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        for t in 0..cfg.trials {
            let mut text = DEAP_CHANNELS[..DEMO_CHANNELS].join(",");
            text.push('\n');
            let trial = &subj.data[t * DEAP_CHANNELS.len() * samples..];
            for i in 0..samples {
                for c in 0..DEMO_CHANNELS {
                    let sep = if c + 1 == DEMO_CHANNELS { '\n' } else { ',' };
                    let _ = write!(text, "{:.3}{sep}", trial[c * samples + i]);
                }
            }
            let path = dir.join(format!("t{:02}.csv", t + 1));
            fs::write(&path, text).map_err(|e| io_err(&path, e))?;
            let l = &subj.labels[t * 4..t * 4 + 4];
            let _ = writeln!(ratings, "{s},{},{:.2},{:.2}", t + 1, l[0], l[1]);
        }
    }
    let path = folder.join("ratings.csv");
    fs::write(&path, ratings).map_err(|e| io_err(&path, e))?;
    println!("demo dataset in {}", folder.display());
    Ok(())
}
