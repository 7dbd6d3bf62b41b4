//! `folds`: the evaluation protocol's cross-validation splits → `splits.parquet`,
//! one row per (fold, subject, trial) with role train, val or test.
//!
//! Splits are by trial, never by window: every window of a trial shares its
//! trial's role. Protocols (docs/method.md, "Evaluation protocols"):
//! - `trial-kfold` (default, k = 10): all subjects' trials pooled, shuffled and
//!   dealt into k folds of near-equal size; fold f tests on its trials.
//! - `subject-dependent`: the same within each subject (each subject's trials dealt
//!   into k folds); fold f tests on fold f of every subject, and per-subject models
//!   train on that subject's rows.
//! - `loso`: fold f tests on the f-th subject (k = number of subjects).
//! - `leave-video-out`: the trial indices (on DEAP the music videos, the same for
//!   every subject) are dealt into k folds; fold f tests every subject's trials of its
//!   videos, so no video is both trained and tested on (eye movements follow the video).
//!
//! In each fold, `val_fraction` of the non-test units (rounded, at least one when
//! the fraction is positive and two or more remain) become the validation set for
//! early stopping; the rest train. The unit is what the protocol holds out: a trial
//! (`trial-kfold`; within each subject for `subject-dependent`), a subject (`loso`:
//! validation subjects are disjoint from training and test subjects) or a video
//! (`leave-video-out`). Shuffles are seeded: the same seed gives the same splits.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringBuilder, UInt16Builder};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

use crate::data::columns::{open_parquet, string_column, u16_column};
use crate::data::tables;
use crate::data::windows::reader::read_trials;
use crate::params::ParamSchema;
use crate::stage::{Context, Outcome, Stage, StageError};

/// An evaluation protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    TrialKfold,
    SubjectDependent,
    Loso,
    LeaveVideoOut,
}

crate::choice_param!(Protocol {
    TrialKfold => "trial-kfold",
    SubjectDependent => "subject-dependent",
    Loso => "loso",
    LeaveVideoOut => "leave-video-out",
});

impl Protocol {
    /// What one fold holds out, in words (for reports).
    pub fn held_out(self) -> &'static str {
        match self {
            Protocol::TrialKfold => {
                "trials: all subjects' trials pooled and dealt into folds; a test trial's subject and video also occur in training"
            }
            Protocol::SubjectDependent => {
                "trials within each subject; with a `subject` axis one model per subject and fold"
            }
            Protocol::Loso => "whole subjects (leave-one-subject-out); validation subjects are disjoint from training and test subjects",
            Protocol::LeaveVideoOut => {
                "trial indices (on DEAP the music videos) across all subjects: no video is both trained and tested on"
            }
        }
    }
}

/// The role of a trial in a fold (`splits.parquet`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Train,
    Val,
    Test,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Train, Role::Val, Role::Test];

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "train" => Some(Role::Train),
            "val" => Some(Role::Val),
            "test" => Some(Role::Test),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Train => "train",
            Role::Val => "val",
            Role::Test => "test",
        }
    }
    pub(crate) fn index(self) -> usize {
        match self {
            Role::Train => 0,
            Role::Val => 1,
            Role::Test => 2,
        }
    }
}

/// One row of `splits.parquet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Split {
    pub fold: u16,
    pub subject: u16,
    pub trial: u16,
    pub role: Role,
}

fn rng_for(seed: u64, label: &str) -> ChaCha8Rng {
    let mut h = blake3::Hasher::new();
    h.update(b"pipe folds\0");
    h.update(&seed.to_le_bytes());
    h.update(label.as_bytes());
    ChaCha8Rng::from_seed(*h.finalize().as_bytes())
}

/// How many of `rest` non-test trials validate.
fn val_count(rest: usize, fraction: f64) -> usize {
    if fraction <= 0.0 || rest < 2 {
        return 0;
    }
    ((fraction * rest as f64).round() as usize).clamp(1, rest - 1)
}

/// Deal `items` (shuffled) into `k` folds: fold of item i = its shuffled position mod k.
fn deal<T: Copy + Ord>(items: &[T], k: usize, rng: &mut ChaCha8Rng) -> BTreeMap<T, usize> {
    let mut v = items.to_vec();
    v.shuffle(rng);
    v.into_iter().enumerate().map(|(i, t)| (t, i % k)).collect()
}

/// The splits of `trials` ((subject, trial) pairs). `k` is ignored for `loso`.
pub fn make_splits(
    trials: &[(u16, u16)],
    protocol: Protocol,
    k: usize,
    val_fraction: f64,
    seed: u64,
) -> Result<(Vec<Split>, usize), StageError> {
    if !(0.0..1.0).contains(&val_fraction) {
        return Err(StageError::Param(format!(
            "val_fraction must be in [0, 1), got {val_fraction}"
        )));
    }
    let trials: Vec<(u16, u16)> = trials
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let subjects: Vec<u16> = trials
        .iter()
        .map(|t| t.0)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let by_subject =
        |s: u16| -> Vec<(u16, u16)> { trials.iter().copied().filter(|t| t.0 == s).collect() };
    // test fold of each trial
    let (k, test_fold): (usize, BTreeMap<(u16, u16), usize>) = match protocol {
        Protocol::TrialKfold => {
            if k < 2 || k > trials.len() {
                return Err(StageError::Param(format!(
                    "trial-kfold needs 2 <= k <= number of trials ({}), got k = {k}",
                    trials.len()
                )));
            }
            (k, deal(&trials, k, &mut rng_for(seed, "trial-kfold")))
        }
        Protocol::SubjectDependent => {
            if k < 2 {
                return Err(StageError::Param(format!(
                    "subject-dependent needs k >= 2, got {k}"
                )));
            }
            let mut folds = BTreeMap::new();
            for &s in &subjects {
                let mine = by_subject(s);
                if mine.len() < k {
                    return Err(StageError::Param(format!(
                        "subject-dependent with k = {k} needs at least {k} trials per subject; subject {s} has {}",
                        mine.len()
                    )));
                }
                folds.extend(deal(
                    &mine,
                    k,
                    &mut rng_for(seed, &format!("subject-dependent {s}")),
                ));
            }
            (k, folds)
        }
        Protocol::Loso => {
            if subjects.len() < 2 {
                return Err(StageError::Param(format!(
                    "loso needs at least 2 subjects, the windows have {}",
                    subjects.len()
                )));
            }
            let pos: BTreeMap<u16, usize> =
                subjects.iter().enumerate().map(|(i, &s)| (s, i)).collect();
            (
                subjects.len(),
                trials.iter().map(|&t| (t, pos[&t.0])).collect(),
            )
        }
        Protocol::LeaveVideoOut => {
            let videos: Vec<u16> = trials
                .iter()
                .map(|t| t.1)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            if k < 2 || k > videos.len() {
                return Err(StageError::Param(format!(
                    "leave-video-out needs 2 <= k <= number of trial indices ({}), got k = {k}",
                    videos.len()
                )));
            }
            let fold_of = deal(&videos, k, &mut rng_for(seed, "leave-video-out"));
            (k, trials.iter().map(|&t| (t, fold_of[&t.1])).collect())
        }
    };
    if k > usize::from(u16::MAX) {
        return Err(StageError::Param(format!(
            "k = {k} folds do not fit the u16 fold index"
        )));
    }
    let mut out = Vec::with_capacity(trials.len() * k);
    for f in 0..k {
        let rest: Vec<(u16, u16)> = trials
            .iter()
            .copied()
            .filter(|t| test_fold[t] != f)
            .collect();
        let mut val = BTreeSet::new();
        // Validation units: trials (per subject for subject-dependent), whole subjects
        // for loso, whole videos for leave-video-out.
        match protocol {
            Protocol::TrialKfold | Protocol::SubjectDependent => {
                let groups: Vec<Vec<(u16, u16)>> = if protocol == Protocol::SubjectDependent {
                    subjects
                        .iter()
                        .map(|&s| rest.iter().copied().filter(|t| t.0 == s).collect())
                        .collect()
                } else {
                    vec![rest]
                };
                for (g, mut group) in groups.into_iter().enumerate() {
                    let n = val_count(group.len(), val_fraction);
                    group.shuffle(&mut rng_for(
                        seed,
                        &format!("{} val fold {f} group {g}", protocol.name()),
                    ));
                    val.extend(group.into_iter().take(n));
                }
            }
            Protocol::Loso | Protocol::LeaveVideoOut => {
                let unit = |t: &(u16, u16)| if protocol == Protocol::Loso { t.0 } else { t.1 };
                let mut units: Vec<u16> = rest
                    .iter()
                    .map(unit)
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let n = val_count(units.len(), val_fraction);
                units.shuffle(&mut rng_for(
                    seed,
                    &format!("{} val fold {f}", protocol.name()),
                ));
                let chosen: BTreeSet<u16> = units.into_iter().take(n).collect();
                val.extend(rest.iter().copied().filter(|t| chosen.contains(&unit(t))));
            }
        }
        for &t in &trials {
            let role = if test_fold[&t] == f {
                Role::Test
            } else if val.contains(&t) {
                Role::Val
            } else {
                Role::Train
            };
            out.push(Split {
                fold: f as u16,
                subject: t.0,
                trial: t.1,
                role,
            });
        }
    }
    Ok((out, k))
}

/// One fold of `splits.parquet`: (subject, trial) → role, and the protocol its
/// metadata names (empty when it names none).
pub(crate) struct FoldSplits {
    pub(crate) roles: HashMap<(u16, u16), Role>,
    pub(crate) protocol: String,
}

/// `splits.parquet` for one fold, read in one pass over the file.
pub(crate) fn read_splits(path: &Path, fold: u16) -> Result<FoldSplits, StageError> {
    let builder = open_parquet(path)?;
    let protocol = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .into_iter()
        .flatten()
        .find(|kv| kv.key == "protocol")
        .and_then(|kv| kv.value.clone())
        .unwrap_or_default();
    let reader = builder
        .build()
        .map_err(|e| StageError::bad_file(path, format!("reading Parquet: {e}")))?;
    let mut out = HashMap::new();
    let mut folds_seen = std::collections::BTreeSet::new();
    for batch in reader {
        let batch =
            batch.map_err(|e| StageError::bad_file(path, format!("reading Parquet: {e}")))?;
        let f = u16_column(path, &batch, "fold")?;
        let s = u16_column(path, &batch, "subject")?;
        let t = u16_column(path, &batch, "trial")?;
        let roles = string_column(path, &batch, "role")?;
        for i in 0..batch.num_rows() {
            folds_seen.insert(f[i]);
            if f[i] != fold {
                continue;
            }
            let role = Role::parse(&roles[i]).ok_or_else(|| {
                StageError::bad_file(
                    path,
                    format!("row {i}: role {:?} is not train, val or test", roles[i]),
                )
            })?;
            if out
                .insert((s[i], t[i]), role)
                .is_some_and(|old| old != role)
            {
                return Err(StageError::bad_file(
                    path,
                    format!("fold {fold}: subject {} trial {} has two roles", s[i], t[i]),
                ));
            }
        }
    }
    if out.is_empty() {
        return Err(StageError::bad_file(
            path,
            format!("fold {fold} is not in the table (folds present: {folds_seen:?})"),
        ));
    }
    Ok(FoldSplits {
        roles: out,
        protocol,
    })
}

/// Write `splits.parquet`.
pub fn write_splits(
    path: &Path,
    splits: &[Split],
    protocol: Protocol,
    k: usize,
) -> Result<(), StageError> {
    let err =
        |e: &dyn std::fmt::Display| StageError::bad_file(path, format!("writing Parquet: {e}"));
    let schema = Arc::new(Schema::new(vec![
        Field::new("fold", DataType::UInt16, false),
        Field::new("subject", DataType::UInt16, false),
        Field::new("trial", DataType::UInt16, false),
        Field::new("role", DataType::Utf8, false),
    ]));
    let (mut f, mut s, mut t, mut r) = (
        UInt16Builder::new(),
        UInt16Builder::new(),
        UInt16Builder::new(),
        StringBuilder::new(),
    );
    for x in splits {
        f.append_value(x.fold);
        s.append_value(x.subject);
        t.append_value(x.trial);
        r.append_value(x.role.as_str());
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(f.finish()),
        Arc::new(s.finish()),
        Arc::new(t.finish()),
        Arc::new(r.finish()),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| err(&e))?;
    let props = crate::data::tables::zstd_props(&[
        ("protocol", protocol.name().to_string()),
        ("k", k.to_string()),
    ])
    .build();
    let file = File::create(path).map_err(|e| StageError::io(path, e))?;
    let mut w = ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| err(&e))?;
    w.write(&batch).map_err(|e| err(&e))?;
    w.close().map_err(|e| err(&e))?;
    Ok(())
}

pub struct Folds;

/// The shuffle seed of repetition `repeat`: the seed itself for 0, else a SplitMix64
/// mix of both (distinct, well-spread draws per repetition).
pub fn repeat_seed(seed: u64, repeat: usize) -> u64 {
    if repeat == 0 {
        return seed;
    }
    let mut z = seed ^ (repeat as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

crate::stage_params! {
    /// What `folds` takes.
    pub struct FoldsParams {
        /// evaluation protocol
        protocol: Protocol = Protocol::TrialKfold;
        /// number of folds (loso: the number of subjects, k is ignored; leave-video-out: folds of trial indices)
        k: usize = 10;
        /// fraction of the non-test trials used for validation
        val_fraction: f64 = 0.1;
        /// shuffle seed
        seed: i64 = 0;
        /// repetition of the cross-validation: each value re-draws the folds from the seed (0: the seed's own draw); a `repeat` matrix axis fills it
        repeat: usize = 0;
    }
}

impl Stage for Folds {
    fn name(&self) -> &'static str {
        "folds"
    }
    fn version(&self) -> u32 {
        2
    }
    fn doc(&self) -> &'static str {
        "splits the windows' trials into cross-validation folds (trial-kfold | subject-dependent | loso | leave-video-out) with train/val/test roles -> splits.parquet"
    }
    fn schema(&self) -> ParamSchema {
        ParamSchema::of::<FoldsParams>()
    }
    fn consumes(&self) -> Vec<&'static str> {
        vec![tables::WINDOWS]
    }
    fn produces(&self) -> Vec<&'static str> {
        vec![tables::SPLITS]
    }
    fn run(&self, ctx: &Context) -> Result<Outcome, StageError> {
        let p: FoldsParams = ctx.params()?;
        let protocol = p.protocol;
        let windows = ctx.input_file(tables::WINDOWS)?;
        let trials = read_trials(&windows)?;
        let (splits, k) = make_splits(
            &trials,
            protocol,
            p.k,
            p.val_fraction,
            repeat_seed(ctx.seed, p.repeat),
        )?;
        write_splits(&ctx.out_dir.join(tables::SPLITS), &splits, protocol, k)?;
        let mut per_fold = Vec::with_capacity(k);
        for f in 0..k {
            let count = |r: Role| {
                splits
                    .iter()
                    .filter(|s| usize::from(s.fold) == f && s.role == r)
                    .count()
            };
            per_fold.push(json!({"train": count(Role::Train), "val": count(Role::Val), "test": count(Role::Test)}));
        }
        let subjects: BTreeSet<u16> = trials.iter().map(|t| t.0).collect();
        let mut m = Map::new();
        m.insert("protocol".into(), Value::from(protocol.name()));
        m.insert("k".into(), Value::from(k));
        m.insert("trials".into(), Value::from(trials.len()));
        m.insert("subjects".into(), Value::from(subjects.len()));
        m.insert("folds".into(), Value::Array(per_fold));
        Ok(Outcome::with_metrics(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{context, parquet_metadata};
    use polars::prelude::*;
    use std::collections::HashMap;

    fn grid(subjects: u16, trials: u16) -> Vec<(u16, u16)> {
        (1..=subjects)
            .flat_map(|s| (1..=trials).map(move |t| (s, t)))
            .collect()
    }

    /// The laws every protocol obeys.
    fn check_laws(trials: &[(u16, u16)], splits: &[Split], k: usize) {
        // one row per (fold, trial): no trial has two roles in a fold
        let mut seen = BTreeSet::new();
        for s in splits {
            assert!(seen.insert((s.fold, s.subject, s.trial)), "{s:?} twice");
        }
        assert_eq!(splits.len(), trials.len() * k);
        // roles partition the trials in every fold
        for f in 0..k as u16 {
            let fold: BTreeSet<(u16, u16)> = splits
                .iter()
                .filter(|s| s.fold == f)
                .map(|s| (s.subject, s.trial))
                .collect();
            assert_eq!(fold, trials.iter().copied().collect());
            assert!(splits.iter().any(|s| s.fold == f && s.role == Role::Test));
            assert!(splits.iter().any(|s| s.fold == f && s.role == Role::Train));
        }
        // every trial is test exactly once
        let mut tests: HashMap<(u16, u16), usize> = HashMap::new();
        for s in splits.iter().filter(|s| s.role == Role::Test) {
            *tests.entry((s.subject, s.trial)).or_default() += 1;
        }
        assert_eq!(tests.len(), trials.len());
        assert!(tests.values().all(|&n| n == 1));
    }

    #[test]
    fn trial_kfold_pools_subjects_into_balanced_folds() {
        let trials = grid(3, 7);
        let (splits, k) = make_splits(&trials, Protocol::TrialKfold, 10, 0.1, 7).unwrap();
        assert_eq!(k, 10);
        check_laws(&trials, &splits, k);
        for f in 0..10u16 {
            let n_test = splits
                .iter()
                .filter(|s| s.fold == f && s.role == Role::Test)
                .count();
            assert!(n_test == 2 || n_test == 3, "fold {f}: {n_test}");
            let n_val = splits
                .iter()
                .filter(|s| s.fold == f && s.role == Role::Val)
                .count();
            assert_eq!(n_val, ((21 - n_test) as f64 * 0.1).round() as usize);
        }
    }

    #[test]
    fn subject_dependent_splits_within_each_subject() {
        let trials = grid(3, 12);
        let (splits, k) = make_splits(&trials, Protocol::SubjectDependent, 4, 0.25, 1).unwrap();
        check_laws(&trials, &splits, k);
        for f in 0..4u16 {
            for s in 1..=3u16 {
                let role = |r: Role| {
                    splits
                        .iter()
                        .filter(|x| x.fold == f && x.subject == s && x.role == r)
                        .count()
                };
                assert_eq!(role(Role::Test), 3);
                assert_eq!(role(Role::Val), 2); // round(0.25 · 9)
                assert_eq!(role(Role::Train), 7);
            }
        }
        let e = make_splits(&grid(2, 3), Protocol::SubjectDependent, 4, 0.1, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("subject 1 has 3"), "{e}");
    }

    #[test]
    fn loso_leaves_one_subject_out() {
        let trials: Vec<(u16, u16)> = vec![(2, 1), (2, 2), (5, 1), (5, 2), (5, 3), (9, 1)];
        let (splits, k) = make_splits(&trials, Protocol::Loso, 10, 0.2, 3).unwrap();
        assert_eq!(k, 3);
        check_laws(&trials, &splits, k);
        for (f, subject) in [2u16, 5, 9].into_iter().enumerate() {
            for s in splits.iter().filter(|s| usize::from(s.fold) == f) {
                assert_eq!(s.role == Role::Test, s.subject == subject, "{s:?}");
            }
        }
        assert!(make_splits(&grid(1, 5), Protocol::Loso, 10, 0.1, 0).is_err());
    }

    #[test]
    fn loso_validates_on_subjects_disjoint_from_training_and_test() {
        let trials = grid(8, 6);
        let (splits, k) = make_splits(&trials, Protocol::Loso, 0, 0.3, 5).unwrap();
        assert_eq!(k, 8);
        check_laws(&trials, &splits, k);
        for f in 0..k as u16 {
            let subjects = |r: Role| -> BTreeSet<u16> {
                splits
                    .iter()
                    .filter(|s| s.fold == f && s.role == r)
                    .map(|s| s.subject)
                    .collect()
            };
            let (train, val, test) = (
                subjects(Role::Train),
                subjects(Role::Val),
                subjects(Role::Test),
            );
            // 30 % of the 7 non-test subjects, rounded: 2
            assert_eq!((val.len(), test.len(), train.len()), (2, 1, 5), "fold {f}");
            assert!(val.is_disjoint(&train) && val.is_disjoint(&test) && train.is_disjoint(&test));
        }
    }

    #[test]
    fn leave_video_out_never_tests_a_trained_video() {
        // 5 subjects who all watched videos 1..=12
        let trials = grid(5, 12);
        let (splits, k) = make_splits(&trials, Protocol::LeaveVideoOut, 4, 0.25, 9).unwrap();
        assert_eq!(k, 4);
        check_laws(&trials, &splits, k);
        let mut tested = BTreeSet::new();
        for f in 0..k as u16 {
            let videos = |r: Role| -> BTreeSet<u16> {
                splits
                    .iter()
                    .filter(|s| s.fold == f && s.role == r)
                    .map(|s| s.trial)
                    .collect()
            };
            let (train, val, test) = (videos(Role::Train), videos(Role::Val), videos(Role::Test));
            assert_eq!(test.len(), 3, "12 videos in 4 folds");
            assert!(train.is_disjoint(&test) && val.is_disjoint(&test) && train.is_disjoint(&val));
            // every subject's trial of a test video is tested
            let n_test = splits
                .iter()
                .filter(|s| s.fold == f && s.role == Role::Test)
                .count();
            assert_eq!(n_test, 3 * 5);
            tested.extend(test);
        }
        assert_eq!(tested.len(), 12, "each video is tested in exactly one fold");
        assert!(make_splits(&trials, Protocol::LeaveVideoOut, 13, 0.1, 0).is_err());
    }

    #[test]
    fn seeded_and_validated() {
        let trials = grid(2, 20);
        let a = make_splits(&trials, Protocol::TrialKfold, 5, 0.1, 11).unwrap();
        let b = make_splits(&trials, Protocol::TrialKfold, 5, 0.1, 11).unwrap();
        let c = make_splits(&trials, Protocol::TrialKfold, 5, 0.1, 12).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(make_splits(&trials, Protocol::TrialKfold, 41, 0.1, 0).is_err());
        assert!(make_splits(&trials, Protocol::TrialKfold, 1, 0.1, 0).is_err());
        assert!(make_splits(&trials, Protocol::TrialKfold, 5, 1.0, 0).is_err());
        let (none, _) = make_splits(&trials, Protocol::TrialKfold, 5, 0.0, 0).unwrap();
        assert!(none.iter().all(|s| s.role != Role::Val));
        // repetitions: 0 is the seed's own draw, the others differ from it and each other
        assert_eq!(repeat_seed(11, 0), 11);
        let draws: BTreeSet<u64> = (0..20).map(|r| repeat_seed(11, r)).collect();
        assert_eq!(draws.len(), 20);
        let r1 = make_splits(&trials, Protocol::TrialKfold, 5, 0.1, repeat_seed(11, 1)).unwrap();
        assert_ne!(a, r1);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn laws_hold_for_random_designs(
            subjects in 2u16..6, trials in 2u16..15, k in 2usize..8, val in 0.0f64..0.5, seed in 0u64..1000, which in 0usize..4,
        ) {
            let t = grid(subjects, trials);
            let protocol = [Protocol::TrialKfold, Protocol::SubjectDependent, Protocol::Loso, Protocol::LeaveVideoOut][which];
            let impossible = match protocol {
                Protocol::TrialKfold => k > t.len(),
                Protocol::SubjectDependent | Protocol::LeaveVideoOut => usize::from(trials) < k,
                Protocol::Loso => false,
            };
            match make_splits(&t, protocol, k, val, seed) {
                Ok((splits, k)) => {
                    proptest::prop_assert!(!impossible);
                    check_laws(&t, &splits, k);
                }
                Err(e) => proptest::prop_assert!(impossible && matches!(e, StageError::Param(_))),
            }
        }
    }

    #[test]
    fn stage_writes_splits_for_the_windows_trials() {
        let tmp = tempfile::tempdir().unwrap();
        let up = tmp.path().join("up");
        let out = tmp.path().join("out");
        std::fs::create_dir_all(&up).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        crate::data::windows::tests::write_tables(&up, 14);
        let spec = crate::data::windows::WindowSpec {
            eeg_channels: vec!["Fp1".into()],
            eog_channels: vec![],
            baseline_s: 1.0,
            window_s: 1.0,
            ..Default::default()
        };
        crate::data::windows::make_windows(
            &up.join(tables::RECORDINGS),
            &up.join(tables::LABELS),
            &up.join(tables::WINDOWS),
            &spec,
            |_, _| Ok(()),
        )
        .unwrap();
        let ctx = context(
            &Folds,
            json!({"protocol": "loso", "seed": 3}),
            &[("windows", &up)],
            &out,
        );
        let m = Folds.run(&ctx).unwrap().metrics;
        assert_eq!(m["k"], 2);
        assert_eq!(m["trials"], 6);
        let path = out.join(tables::SPLITS);
        let md = parquet_metadata(&path);
        assert_eq!((md["protocol"].as_str(), md["k"].as_str()), ("loso", "2"));
        let df = LazyFrame::scan_parquet(
            PlRefPath::try_from_path(&path).unwrap(),
            ScanArgsParquet::default(),
        )
        .unwrap()
        .collect()
        .unwrap();
        assert_eq!(df.height(), 12);
        let roles: Vec<&str> = df
            .column("role")
            .unwrap()
            .str()
            .unwrap()
            .no_null_iter()
            .collect();
        assert_eq!(roles.iter().filter(|r| **r == "test").count(), 6);
        assert_eq!(df.column("fold").unwrap().u16().unwrap().get(11), Some(1));
    }
}
