//! The training data of one (fold, target) cell: `windows.parquet` + `splits.parquet`
//! → per-role (train / val / test) arrays of the requested modalities, z-scored per
//! channel with statistics of the **training role only** (docs/method.md, "Inputs").
//!
//! `windows.parquet` is streamed a record batch at a time and only the channels of the
//! requested modalities of windows that have a role in the fold are kept, so memory is
//! one copy of what training needs (not the whole table).

use std::path::Path;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::data::folds::{read_splits, FoldSplits};
use crate::stage::StageError;

/// Which binary label a model is trained on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Arousal,
    Valence,
}

crate::choice_param!(Target { Arousal => "arousal", Valence => "valence" });

pub use crate::data::folds::Role;
use crate::data::windows::reader::WindowsReader;
pub use crate::data::windows::reader::{Modality, WindowId, WindowsMeta};

/// The windows of one role: labels, ids and one array per requested modality,
/// each `n × channels × samples` row-major.
#[derive(Debug, Clone, Default)]
pub struct RoleSet {
    pub ids: Vec<WindowId>,
    pub labels: Vec<u8>,
    /// One per requested modality (same order as [`FoldData::modalities`]).
    pub views: Vec<Vec<f32>>,
}

impl RoleSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Per-channel z-score statistics (from the training role).
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelStats {
    pub mean: Vec<f32>,
    /// Population standard deviation; a constant channel gets 1 so it maps to 0.
    pub std: Vec<f32>,
}

/// Everything a training stage needs from the data tables for one cell.
#[derive(Debug, Clone)]
pub struct FoldData {
    pub meta: WindowsMeta,
    /// The evaluation protocol that made the splits (`splits.parquet`'s metadata).
    pub protocol: String,
    pub fold: u16,
    pub target: Target,
    pub modalities: Vec<Modality>,
    /// Table channel indices per modality.
    pub channels: Vec<Vec<usize>>,
    /// Statistics per modality, computed on the training role.
    pub stats: Vec<ChannelStats>,
    roles: [RoleSet; 3],
}

impl FoldData {
    pub fn role(&self, role: Role) -> &RoleSet {
        &self.roles[role.index()]
    }
    pub fn samples(&self) -> usize {
        self.meta.samples
    }
    /// Number of channels of the `m`-th requested modality.
    pub fn n_channels(&self, m: usize) -> usize {
        self.channels.get(m).map_or(0, Vec::len)
    }

    /// Copy the rows `idx` of role `role`, modality number `m`, into one contiguous
    /// `idx.len() × channels × samples` buffer.
    pub fn gather(&self, role: Role, m: usize, idx: &[usize]) -> Vec<f32> {
        let set = self.role(role);
        let row = self.n_channels(m) * self.samples();
        let view = &set.views[m];
        let mut out = Vec::with_capacity(idx.len() * row);
        for &i in idx {
            out.extend_from_slice(&view[i * row..(i + 1) * row]);
        }
        out
    }

    /// Labels of rows `idx` of `role`.
    pub fn gather_labels(&self, role: Role, idx: &[usize]) -> Vec<u8> {
        let set = self.role(role);
        idx.iter().map(|&i| set.labels[i]).collect()
    }

    /// Read the tables for `fold` and `target`, keeping the channels of `modalities`.
    /// Errors name the file and what is wrong; a role without windows is an error for
    /// `train` and `test`, allowed (empty) for `val`.
    pub fn load(
        windows: &Path,
        splits: &Path,
        fold: u16,
        target: Target,
        modalities: &[Modality],
    ) -> Result<FoldData, StageError> {
        Self::load_subject(windows, splits, fold, target, modalities, None)
    }

    /// [`FoldData::load`] restricted to one subject's trials (per-subject models of
    /// the subject-dependent protocol) when `subject` is given.
    pub fn load_subject(
        windows: &Path,
        splits: &Path,
        fold: u16,
        target: Target,
        modalities: &[Modality],
        subject: Option<u16>,
    ) -> Result<FoldData, StageError> {
        let FoldSplits {
            roles: mut roles_of,
            protocol,
        } = read_splits(splits, fold)?;
        if let Some(s) = subject {
            roles_of.retain(|k, _| k.0 == s);
            if roles_of.is_empty() {
                return Err(StageError::bad_file(
                    splits,
                    format!("subject {s} has no trials in fold {fold}"),
                ));
            }
        }
        let mut reader = WindowsReader::open(windows)?;
        let meta = reader.meta.clone();
        let mut channels = Vec::new();
        for &m in modalities {
            let ch = meta.channels_of(m);
            if ch.is_empty() {
                return Err(StageError::bad_file(
                    windows,
                    format!(
                        "no {} channel in the table (kinds: {:?}); the model needs at least one",
                        m.kind(),
                        meta.kinds
                    ),
                ));
            }
            channels.push(ch);
        }
        let row_len = meta.channels.len() * meta.samples;
        let mut roles: [RoleSet; 3] = Default::default();
        for set in roles.iter_mut() {
            set.views = vec![Vec::new(); modalities.len()];
        }
        let mut seen = std::collections::HashSet::new();
        while let Some(batch) = reader.next_batch()? {
            for r in 0..batch.len() {
                let id = batch.ids[r];
                let Some(&role) = roles_of.get(&(id.subject, id.trial)) else {
                    continue;
                };
                if !seen.insert(id) {
                    return Err(StageError::bad_file(
                        windows,
                        format!(
                            "window {} of subject {} trial {} appears twice",
                            id.window, id.subject, id.trial
                        ),
                    ));
                }
                let data = &batch.data[r * row_len..(r + 1) * row_len];
                if let Some(bad) = data.iter().position(|v| !v.is_finite()) {
                    let ch = bad / meta.samples;
                    return Err(StageError::bad_file(
                        windows,
                        format!(
                            "non-finite value ({}) in subject {} trial {} window {} channel {} sample {}",
                            data[bad],
                            id.subject,
                            id.trial,
                            id.window,
                            meta.channels.get(ch).map_or("?", String::as_str),
                            bad % meta.samples
                        ),
                    ));
                }
                let set = &mut roles[role.index()];
                set.ids.push(id);
                set.labels.push(match target {
                    Target::Arousal => batch.arousal[r],
                    Target::Valence => batch.valence[r],
                });
                for (m, ch) in channels.iter().enumerate() {
                    for &c in ch {
                        set.views[m]
                            .extend_from_slice(&data[c * meta.samples..(c + 1) * meta.samples]);
                    }
                }
            }
        }
        for role in [Role::Train, Role::Test] {
            if roles[role.index()].is_empty() {
                return Err(StageError::Data(format!(
                    "fold {fold} has no {} windows: no trial of {} with role {} in {} has windows",
                    role.as_str(),
                    windows.display(),
                    role.as_str(),
                    splits.display()
                )));
            }
        }
        let mut stats = Vec::new();
        for (m, ch) in channels.iter().enumerate() {
            let s = channel_stats(&roles[0].views[m], ch.len(), meta.samples);
            for set in roles.iter_mut() {
                apply_zscore(&mut set.views[m], &s, meta.samples);
            }
            stats.push(s);
        }
        Ok(FoldData {
            meta,
            protocol,
            fold,
            target,
            modalities: modalities.to_vec(),
            channels,
            stats,
            roles,
        })
    }
}

/// Mean and population std per channel of an `n × ch × t` buffer, accumulated in f64.
pub fn channel_stats(view: &[f32], ch: usize, t: usize) -> ChannelStats {
    let n = view.len().checked_div(ch * t).unwrap_or(0);
    let mut mean = vec![0f64; ch];
    for row in view.chunks_exact(ch * t.max(1)) {
        for (c, m) in mean.iter_mut().enumerate() {
            *m += row[c * t..(c + 1) * t]
                .iter()
                .map(|&v| v as f64)
                .sum::<f64>();
        }
    }
    let count = (n * t).max(1) as f64;
    mean.iter_mut().for_each(|m| *m /= count);
    let mut var = vec![0f64; ch];
    for row in view.chunks_exact(ch * t.max(1)) {
        for (c, v) in var.iter_mut().enumerate() {
            *v += row[c * t..(c + 1) * t]
                .iter()
                .map(|&x| (x as f64 - mean[c]).powi(2))
                .sum::<f64>();
        }
    }
    let std = var
        .iter()
        .map(|v| {
            let s = (v / count).sqrt();
            if s > 1e-12 {
                s as f32
            } else {
                1.0
            }
        })
        .collect();
    ChannelStats {
        mean: mean.into_iter().map(|m| m as f32).collect(),
        std,
    }
}

/// z-score an `n × ch × t` buffer in place.
pub fn apply_zscore(view: &mut [f32], stats: &ChannelStats, t: usize) {
    let ch = stats.mean.len();
    if ch * t == 0 {
        return;
    }
    for row in view.chunks_exact_mut(ch * t) {
        for c in 0..ch {
            let (m, s) = (stats.mean[c], stats.std[c]);
            for v in &mut row[c * t..(c + 1) * t] {
                *v = (*v - m) / s;
            }
        }
    }
}

/// Seeded shuffled mini-batches of `0..n` (the last one may be smaller).
pub fn shuffled_batches(n: usize, batch: usize, rng: &mut StdRng) -> Vec<Vec<usize>> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(rng);
    idx.chunks(batch.max(1)).map(<[usize]>::to_vec).collect()
}

/// Batches of `0..n` in order (for evaluation).
pub fn ordered_batches(n: usize, batch: usize) -> Vec<Vec<usize>> {
    (0..n)
        .collect::<Vec<_>>()
        .chunks(batch.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::folds::Split;
    use crate::test_support::windows::{write_splits, write_windows, WindowsFixture};
    use rand::SeedableRng;

    fn small() -> WindowsFixture {
        // 2 subjects × 3 trials × 2 windows, channels: 2 EEG, 1 other, 2 EOG, T = 4.
        WindowsFixture::random(2, 3, 2, &["Fp1", "AF3", "Status", "hEOG", "vEOG"], 4, 1)
    }

    fn splits_for(fix: &WindowsFixture) -> Vec<Split> {
        let mut rows = Vec::new();
        for s in 1..=fix.subjects {
            for t in 1..=fix.trials {
                // fold 0: trial 1 test, trial 2 val, trial 3 train; fold 1: everything train except trial 3 test.
                let r0 = match t {
                    1 => Role::Test,
                    2 => Role::Val,
                    _ => Role::Train,
                };
                let r1 = if t == 3 { Role::Test } else { Role::Train };
                rows.push(Split {
                    fold: 0,
                    subject: s,
                    trial: t,
                    role: r0,
                });
                rows.push(Split {
                    fold: 1,
                    subject: s,
                    trial: t,
                    role: r1,
                });
            }
        }
        rows
    }

    #[test]
    fn loads_roles_channels_and_training_statistics() {
        let dir = tempfile::tempdir().unwrap();
        let fix = small();
        let (w, s) = (
            dir.path().join("windows.parquet"),
            dir.path().join("splits.parquet"),
        );
        write_windows(&w, &fix).unwrap();
        write_splits(&s, &splits_for(&fix)).unwrap();
        let d =
            FoldData::load(&w, &s, 0, Target::Valence, &[Modality::Eeg, Modality::Eog]).unwrap();
        assert_eq!(d.channels, vec![vec![0, 1], vec![3, 4]]);
        assert_eq!(d.role(Role::Train).len(), 4);
        assert_eq!(d.role(Role::Val).len(), 4);
        assert_eq!(d.role(Role::Test).len(), 4);
        assert!(d.role(Role::Test).ids.iter().all(|id| id.trial == 1));
        // labels come from the valence column
        for (id, &y) in d
            .role(Role::Train)
            .ids
            .iter()
            .zip(&d.role(Role::Train).labels)
        {
            assert_eq!(y, fix.valence_of(id.subject, id.trial));
        }
        // EOG channel 1 (= table channel 4) of the first test window, z-scored with
        // statistics of the training windows (trial 3) only.
        let train_vals: Vec<f64> = fix
            .rows()
            .filter(|r| r.trial == 3)
            .flat_map(|r| {
                fix.channel(&r, 4)
                    .iter()
                    .map(|&v| v as f64)
                    .collect::<Vec<_>>()
            })
            .collect();
        let mean = train_vals.iter().sum::<f64>() / train_vals.len() as f64;
        let std = (train_vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
            / train_vals.len() as f64)
            .sqrt();
        let id = d.role(Role::Test).ids[0];
        let raw = fix.channel(&fix.row_of(id), 4);
        let got = &d.role(Role::Test).views[1][4..8];
        for (g, r) in got.iter().zip(raw) {
            assert!(
                (*g as f64 - (*r as f64 - mean) / std).abs() < 1e-4,
                "{g} vs {r}"
            );
        }
        // training role is standardised
        let s1 = channel_stats(&d.role(Role::Train).views[0], 2, 4);
        for (m, s) in s1.mean.iter().zip(&s1.std) {
            assert!(m.abs() < 1e-5 && (s - 1.0).abs() < 1e-4);
        }
        // gather
        let g = d.gather(Role::Test, 1, &[1, 0]);
        assert_eq!(&g[8..16], &d.role(Role::Test).views[1][0..8]);
    }

    #[test]
    fn missing_fold_channel_and_nan_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut fix = small();
        let (w, s) = (
            dir.path().join("windows.parquet"),
            dir.path().join("splits.parquet"),
        );
        write_windows(&w, &fix).unwrap();
        write_splits(&s, &splits_for(&fix)).unwrap();
        let e = FoldData::load(&w, &s, 7, Target::Arousal, &[Modality::Eog])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("fold 7 is not in the table") && e.contains("splits.parquet"),
            "{e}"
        );
        let fix2 = WindowsFixture::random(1, 3, 1, &["Fp1", "AF3"], 4, 1);
        write_windows(&w, &fix2).unwrap();
        let e = FoldData::load(&w, &s, 0, Target::Arousal, &[Modality::Eog])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no eog channel"), "{e}");
        fix.data[7] = f32::NAN;
        write_windows(&w, &fix).unwrap();
        let e = FoldData::load(&w, &s, 0, Target::Arousal, &[Modality::Eeg])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("non-finite") && e.contains("windows.parquet"),
            "{e}"
        );
        std::fs::write(&w, b"not parquet").unwrap();
        let e = FoldData::load(&w, &s, 0, Target::Arousal, &[Modality::Eeg])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a readable Parquet file"), "{e}");
        let e = FoldData::load(
            &dir.path().join("nope.parquet"),
            &s,
            0,
            Target::Arousal,
            &[Modality::Eeg],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("nope.parquet"), "{e}");
    }

    #[test]
    fn wrong_width_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut fix = small();
        let (w, s) = (
            dir.path().join("windows.parquet"),
            dir.path().join("splits.parquet"),
        );
        fix.samples_meta_override = Some(5);
        write_windows(&w, &fix).unwrap();
        write_splits(&s, &splits_for(&fix)).unwrap();
        let e = FoldData::load(&w, &s, 0, Target::Arousal, &[Modality::Eeg])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("holds 20 values per window") && e.contains("25"),
            "{e}"
        );
    }

    #[test]
    fn batches_are_seeded_permutations() {
        let a = shuffled_batches(10, 4, &mut StdRng::seed_from_u64(3));
        let b = shuffled_batches(10, 4, &mut StdRng::seed_from_u64(3));
        assert_eq!(a, b);
        assert_eq!(a.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 4, 2]);
        let mut all: Vec<usize> = a.concat();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_ne!(a, shuffled_batches(10, 4, &mut StdRng::seed_from_u64(4)));
    }
}
