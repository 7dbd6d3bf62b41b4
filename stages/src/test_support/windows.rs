//! Small `windows.parquet` / `splits.parquet` tables in the contract's format
//! (the table contracts of `crate::data::tables`), for the training stages' tests.
//! Both are written by the `windows` and `folds` stages' own writers; this module
//! only makes up their rows, so the training code can be exercised without the whole
//! data pipeline.

use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

use crate::data::folds::{self, Protocol, Split};
use crate::stage::StageError;

/// One row of the fixture: which window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FixtureRow {
    pub subject: u16,
    pub trial: u16,
    pub window: u16,
}

/// An in-memory windows table.
#[derive(Debug, Clone)]
pub(crate) struct WindowsFixture {
    pub subjects: u16,
    pub trials: u16,
    pub windows: u16,
    pub channels: Vec<String>,
    pub samples: usize,
    /// `rows × channels × samples`, rows ordered subject, trial, window.
    pub data: Vec<f32>,
    /// Per (subject, trial), index `(s-1)*trials + (t-1)`.
    pub arousal: Vec<u8>,
    pub valence: Vec<u8>,
    /// Write this `samples` value in the metadata instead of the real one (to test
    /// the reader's checks).
    pub samples_meta_override: Option<usize>,
}

impl WindowsFixture {
    /// Gaussian noise with random binary labels per trial; subjects and trials are
    /// numbered from 1.
    pub(crate) fn random(
        subjects: u16,
        trials: u16,
        windows: u16,
        channels: &[&str],
        samples: usize,
        seed: u64,
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let n = subjects as usize * trials as usize * windows as usize;
        let data = (0..n * channels.len() * samples)
            .map(|_| rng.sample::<f32, _>(StandardNormal))
            .collect();
        let labels = |rng: &mut StdRng| -> Vec<u8> {
            (0..subjects as usize * trials as usize)
                .map(|_| rng.gen_range(0..2u8))
                .collect()
        };
        let arousal = labels(&mut rng);
        let valence = labels(&mut rng);
        WindowsFixture {
            subjects,
            trials,
            windows,
            channels: channels.iter().map(|c| c.to_string()).collect(),
            samples,
            data,
            arousal,
            valence,
            samples_meta_override: None,
        }
    }

    /// Adds a learnable signal: every channel whose name is in `informative` gets a
    /// sine of amplitude `amplitude` whose frequency depends on the window's arousal
    /// label, plus a cosine present only for high valence.
    pub(crate) fn with_signal(self, informative: &[&str], amplitude: f32) -> Self {
        let mut f = self;
        let samples = f.samples;
        let rows: Vec<FixtureRow> = f.rows().collect();
        for (r, row) in rows.iter().enumerate() {
            let k = f.trial_index(row.subject, row.trial);
            let (a, v) = (f.arousal[k] as f32, f.valence[k] as f32);
            for (c, name) in f.channels.clone().iter().enumerate() {
                if !informative.contains(&name.as_str()) {
                    continue;
                }
                let base = (r * f.channels.len() + c) * samples;
                for t in 0..samples {
                    let x = t as f32 / samples as f32 * std::f32::consts::TAU;
                    f.data[base + t] +=
                        amplitude * ((2.0 + 3.0 * a) * x).sin() + amplitude * v * (5.0 * x).cos();
                }
            }
        }
        f
    }

    fn trial_index(&self, subject: u16, trial: u16) -> usize {
        (subject as usize - 1) * self.trials as usize + (trial as usize - 1)
    }

    pub(crate) fn rows(&self) -> impl Iterator<Item = FixtureRow> + '_ {
        (1..=self.subjects).flat_map(move |s| {
            (1..=self.trials).flat_map(move |t| {
                (0..self.windows).map(move |w| FixtureRow {
                    subject: s,
                    trial: t,
                    window: w,
                })
            })
        })
    }

    pub(crate) fn row_of(&self, id: crate::train::dataset::WindowId) -> FixtureRow {
        FixtureRow {
            subject: id.subject,
            trial: id.trial,
            window: id.window,
        }
    }

    /// The samples of channel `c` of `row`.
    pub(crate) fn channel(&self, row: &FixtureRow, c: usize) -> &[f32] {
        let r =
            self.trial_index(row.subject, row.trial) * self.windows as usize + row.window as usize;
        let base = (r * self.channels.len() + c) * self.samples;
        &self.data[base..base + self.samples]
    }

    pub(crate) fn valence_of(&self, subject: u16, trial: u16) -> u8 {
        self.valence[self.trial_index(subject, trial)]
    }
    pub(crate) fn arousal_of(&self, subject: u16, trial: u16) -> u8 {
        self.arousal[self.trial_index(subject, trial)]
    }
}

/// Write `fix` as `windows.parquet` through the `windows` stage's own writer (schema
/// and metadata of the table contract).
pub(crate) fn write_windows(path: &Path, fix: &WindowsFixture) -> Result<(), StageError> {
    let row_len = fix.channels.len() * fix.samples;
    let kinds: Vec<&str> = fix
        .channels
        .iter()
        .map(|c| crate::data::tables::channel_kind(c))
        .collect();
    let meta = vec![
        (
            "channels",
            serde_json::to_string(&fix.channels).expect("strings serialise"),
        ),
        (
            "kinds",
            serde_json::to_string(&kinds).expect("strings serialise"),
        ),
        (
            "samples",
            fix.samples_meta_override.unwrap_or(fix.samples).to_string(),
        ),
        ("sample_rate", "128".to_string()),
        ("dataset", "fixture".to_string()),
    ];
    let mut w = crate::data::windows::WindowsWriter::create(path, row_len, meta)?;
    for (i, r) in fix.rows().enumerate() {
        let (a, v) = (
            fix.arousal_of(r.subject, r.trial),
            fix.valence_of(r.subject, r.trial),
        );
        let ratings = (3.0 + 4.0 * a as f32, 3.0 + 4.0 * v as f32);
        let data = &fix.data[i * row_len..(i + 1) * row_len];
        w.push(r.subject, r.trial, r.window, (a, v), ratings, data)?;
    }
    w.finish()
}

/// Write `splits` as `splits.parquet` through the `folds` stage's writer (protocol
/// `trial-kfold`, k = the number of folds in `splits`).
pub(crate) fn write_splits(path: &Path, splits: &[Split]) -> Result<(), StageError> {
    let k = splits
        .iter()
        .map(|r| usize::from(r.fold) + 1)
        .max()
        .unwrap_or(0);
    folds::write_splits(path, splits, Protocol::TrialKfold, k)
}

/// The `folds` stage's own `trial-kfold` split of `subjects` × `trials` into `k`
/// folds (seed 0; a quarter of each fold's other trials validate).
pub(crate) fn kfold_splits(subjects: u16, trials: u16, k: u16) -> Vec<Split> {
    let all: Vec<(u16, u16)> = (1..=subjects)
        .flat_map(|s| (1..=trials).map(move |t| (s, t)))
        .collect();
    folds::make_splits(&all, Protocol::TrialKfold, usize::from(k), 0.25, 0)
        .expect("a valid fixture split")
        .0
}
