//! The epoch loop every training stage shares: seeded shuffled mini-batches,
//! validation after each epoch, early stopping on the `val` role with a patience,
//! the best weights kept, a per-epoch learning curve, progress and cancellation.

use std::fmt::Write as _;
use std::path::Path;

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::stage::{Context, IoContext, StageError};
use crate::train::dataset::{shuffled_batches, FoldData, Role};
use crate::train::metrics::{predict, Confusion};

/// What the loop trains.
pub(crate) trait Trainee {
    /// One optimisation step on the training rows `idx`; returns the batch loss.
    fn step(&mut self, data: &FoldData, idx: &[usize]) -> Result<f64, StageError>;
    /// Mean cross-entropy and P(high) per row of `role`, in row order, in eval mode.
    fn evaluate(&self, data: &FoldData, role: Role) -> Result<(f64, Vec<f32>), StageError>;
    /// Remember the current weights as the best so far.
    fn keep_best(&mut self);
    /// Go back to the weights of the last [`Trainee::keep_best`].
    fn restore_best(&mut self);
    /// What a feedback phase measured since the last call (the end of the previous
    /// epoch): mean quiz loss of its steps and ‖λ_fb·meta-gradient‖ / ‖λ_ce·∇CE‖ at
    /// its first step. NaN without feedback.
    fn epoch_feedback(&mut self) -> (f64, f64) {
        (f64::NAN, f64::NAN)
    }
}

/// Which validation number decides "better".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Monitor {
    ValLoss,
    ValAcc,
}

crate::choice_param!(Monitor { ValLoss => "val_loss", ValAcc => "val_acc" });

/// Default maximum number of epochs of the training stages.
pub(crate) const DEFAULT_EPOCHS: usize = 50;

crate::stage_params! {
    /// Settings of the loop, all stage parameters.
    pub(crate) struct FitConfig {
        /// maximum number of training epochs
        epochs: usize = DEFAULT_EPOCHS;
        /// mini-batch size
        batch_size: usize = 64;
        /// early stopping: epochs without improvement on the val role before stopping (0 = never)
        patience: usize = 10;
        /// what early stopping and the best checkpoint are chosen on
        monitor: Monitor = Monitor::ValLoss;
        /// batch size of evaluation passes (memory only; results do not depend on it)
        eval_batch_size: usize = 256;
    }
    check |c| {
        if c.epochs == 0 || c.batch_size == 0 || c.eval_batch_size == 0 {
            return Err(StageError::Param(
                "`epochs`, `batch_size` and `eval_batch_size` must be at least 1".into(),
            ));
        }
        Ok(())
    };
}

/// One line of the learning curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    /// NaN when the fold has no val windows.
    pub val_loss: f64,
    pub val_acc: f64,
    /// Mean quiz loss of the epoch's feedback steps (NaN without feedback).
    pub quiz_loss: f64,
    /// ‖λ_fb·meta-gradient‖ / ‖λ_ce·∇CE‖ of the teacher update at the epoch's first
    /// feedback step (NaN without feedback).
    pub fb_ratio: f64,
}

/// What the loop did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FitReport {
    pub curve: Vec<EpochRecord>,
    /// 1-based epoch whose weights were kept.
    pub best_epoch: usize,
    pub stopped_early: bool,
}

/// Accuracy in percent of P(high) against labels.
pub(crate) fn accuracy(labels: &[u8], p_high: &[f32]) -> f64 {
    let pred: Vec<u8> = p_high.iter().map(|&p| predict(p)).collect();
    Confusion::from_pairs(labels, &pred).accuracy()
}

/// Early stopping bookkeeping.
#[derive(Debug, Clone)]
pub(crate) struct EarlyStopping {
    monitor: Monitor,
    patience: usize,
    best: Option<f64>,
    since_best: usize,
}

impl EarlyStopping {
    pub(crate) fn new(monitor: Monitor, patience: usize) -> Self {
        EarlyStopping {
            monitor,
            patience,
            best: None,
            since_best: 0,
        }
    }

    /// Record an epoch; true when it is the best so far (ties keep the earlier one).
    pub(crate) fn improved(&mut self, val_loss: f64, val_acc: f64) -> bool {
        let score = match self.monitor {
            Monitor::ValLoss => -val_loss,
            Monitor::ValAcc => val_acc,
        };
        let better = match self.best {
            None => true,
            Some(b) => score > b,
        };
        if better {
            self.best = Some(score);
            self.since_best = 0;
        } else {
            self.since_best += 1;
        }
        better
    }

    pub(crate) fn should_stop(&self) -> bool {
        self.patience > 0 && self.since_best >= self.patience
    }
}

/// Train `trainee` on the training role of `data`. The batch order comes from
/// `seed`; after the loop the trainee holds the best weights (on the val role, or the
/// last epoch's when the fold has no val windows).
pub(crate) fn fit(
    ctx: &Context,
    phase: &str,
    cfg: &FitConfig,
    seed: u64,
    data: &FoldData,
    trainee: &mut dyn Trainee,
) -> Result<FitReport, StageError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n_train = data.role(Role::Train).len();
    let val_labels = &data.role(Role::Val).labels;
    let has_val = !val_labels.is_empty();
    let mut stop = EarlyStopping::new(cfg.monitor, cfg.patience);
    let mut curve = Vec::new();
    let mut best_epoch = 0;
    let mut stopped_early = false;
    ctx.progress.start(phase, cfg.epochs as u64);
    for epoch in 1..=cfg.epochs {
        let mut total = 0.0;
        let mut count = 0usize;
        let batches = shuffled_batches(n_train, cfg.batch_size, &mut rng);
        let n_batches = batches.len();
        for (b, idx) in batches.into_iter().enumerate() {
            ctx.check_cancelled()?;
            let loss = trainee.step(data, &idx)?;
            if !loss.is_finite() {
                return Err(StageError::Model(format!(
                    "{phase}: the training loss became {loss} in epoch {epoch}; lower the learning rate"
                )));
            }
            total += loss * idx.len() as f64;
            count += idx.len();
            // Within-epoch liveness: an epoch of the full teacher takes minutes.
            ctx.progress.update(
                epoch as u64 - 1,
                &format!(
                    "epoch {epoch} batch {}/{n_batches} loss {:.4}",
                    b + 1,
                    total / count as f64
                ),
            );
        }
        let train_loss = total / count.max(1) as f64;
        let (val_loss, val_acc) = if has_val {
            let (loss, p) = trainee.evaluate(data, Role::Val)?;
            (loss, accuracy(val_labels, &p))
        } else {
            (f64::NAN, f64::NAN)
        };
        let (quiz_loss, fb_ratio) = trainee.epoch_feedback();
        curve.push(EpochRecord {
            epoch,
            train_loss,
            val_loss,
            val_acc,
            quiz_loss,
            fb_ratio,
        });
        if !has_val || stop.improved(val_loss, val_acc) {
            trainee.keep_best();
            best_epoch = epoch;
        }
        let mut msg = format!("loss {train_loss:.4}");
        if has_val {
            let _ = write!(msg, " val loss {val_loss:.4} val acc {val_acc:.1}%");
        }
        ctx.progress.update(epoch as u64, &msg);
        if has_val && stop.should_stop() {
            stopped_early = epoch < cfg.epochs;
            break;
        }
    }
    trainee.restore_best();
    Ok(FitReport {
        curve,
        best_epoch,
        stopped_early,
    })
}

/// Write the learning curve as CSV
/// (`epoch,train_loss,val_loss,val_acc,quiz_loss,fb_ratio`).
pub(crate) fn write_curve(path: &Path, curve: &[EpochRecord]) -> Result<(), StageError> {
    let mut text = String::from("epoch,train_loss,val_loss,val_acc,quiz_loss,fb_ratio\n");
    for r in curve {
        let _ = writeln!(
            text,
            "{},{},{},{},{},{}",
            r.epoch, r.train_loss, r.val_loss, r.val_acc, r.quiz_loss, r.fb_ratio
        );
    }
    std::fs::write(path, text).at(path)
}

/// The (epoch, validation accuracy) points of a learning curve written by
/// [`write_curve`]; epochs without validation accuracy (no val windows) are left out.
pub(crate) fn read_curve(path: &Path) -> Result<Vec<(f64, f64)>, StageError> {
    let text = std::fs::read_to_string(path).at(path)?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| StageError::bad_file(path, format!("no `{name}` column in the header")))
    };
    let (e, acc) = (col("epoch")?, col("val_acc")?);
    let mut points = Vec::new();
    for (i, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        let number = |c: usize| fields.get(c).and_then(|f| f.trim().parse::<f64>().ok());
        match (number(e), number(acc)) {
            (Some(x), Some(y)) if x.is_finite() && y.is_finite() => points.push((x, y)),
            (Some(_), Some(_)) => {}
            _ => {
                return Err(StageError::bad_file(
                    path,
                    format!("line {}: expected numbers, found `{line}`", i + 2),
                ))
            }
        }
    }
    Ok(points)
}

/// Run `f` on a rayon pool of `threads` workers (dfdx's matrix products use the
/// current pool), so a stage uses the threads the engine gave it.
pub(crate) fn with_threads<T: Send>(
    threads: usize,
    f: impl FnOnce() -> T + Send,
) -> Result<T, StageError> {
    Ok(crate::stage::thread_pool(threads)?.install(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_stopping_on_loss_and_accuracy() {
        let mut s = EarlyStopping::new(Monitor::ValLoss, 2);
        assert!(s.improved(1.0, 50.0));
        assert!(!s.improved(1.0, 60.0)); // tie: not better
        assert!(!s.should_stop());
        assert!(!s.improved(1.2, 70.0));
        assert!(s.should_stop());
        let mut s = EarlyStopping::new(Monitor::ValAcc, 0);
        assert!(s.improved(1.0, 50.0));
        assert!(s.improved(2.0, 60.0));
        for _ in 0..100 {
            s.improved(9.0, 10.0);
        }
        assert!(!s.should_stop()); // patience 0 = never
    }

    /// A trainee whose "weights" are its step count; the val loss of the weights
    /// after epoch `e` is `losses[e - 1]` (2 steps per epoch in the test below).
    struct Scripted {
        steps: usize,
        best: usize,
        losses: Vec<f64>,
    }

    impl Trainee for Scripted {
        fn step(&mut self, _: &FoldData, _: &[usize]) -> Result<f64, StageError> {
            self.steps += 1;
            Ok(0.5)
        }
        fn evaluate(&self, data: &FoldData, role: Role) -> Result<(f64, Vec<f32>), StageError> {
            Ok((
                self.losses[self.steps / 2 - 1],
                vec![0.9; data.role(role).len()],
            ))
        }
        fn keep_best(&mut self) {
            self.best = self.steps;
        }
        fn restore_best(&mut self) {
            self.steps = self.best;
        }
    }

    /// Records progress calls as text.
    #[derive(Default)]
    struct Recorder(std::sync::Mutex<Vec<String>>);

    impl crate::stage::Progress for Recorder {
        fn start(&self, phase: &str, total: u64) {
            self.0
                .lock()
                .unwrap()
                .push(format!("start {phase} {total}"));
        }
        fn update(&self, done: u64, message: &str) {
            self.0.lock().unwrap().push(format!("{done} {message}"));
        }
    }

    #[test]
    fn loop_stops_keeps_best_and_writes_the_curve() {
        use crate::test_support::windows::{
            kfold_splits, write_splits, write_windows, WindowsFixture,
        };
        use crate::train::dataset::{Modality, Target};
        let dir = tempfile::tempdir().unwrap();
        let fix = WindowsFixture::random(1, 5, 2, &["hEOG", "vEOG"], 8, 2);
        let (w, s) = (dir.path().join("w.parquet"), dir.path().join("s.parquet"));
        write_windows(&w, &fix).unwrap();
        write_splits(&s, &kfold_splits(1, 5, 5)).unwrap();
        let data = FoldData::load(&w, &s, 0, Target::Arousal, &[Modality::Eog]).unwrap();
        // 3 training trials × 2 windows in batches of 3 → 2 steps per epoch
        assert_eq!(data.role(Role::Train).len(), 6);
        let mut ctx = Context::for_test(crate::Params::default(), dir.path());
        let seen = std::sync::Arc::new(Recorder::default());
        ctx.progress = seen.clone();
        let cfg = FitConfig {
            epochs: 10,
            batch_size: 3,
            patience: 2,
            monitor: Monitor::ValLoss,
            eval_batch_size: 8,
        };
        let mut t = Scripted {
            steps: 0,
            best: 0,
            losses: vec![1.0, 0.8, 0.9, 0.85, 0.7, 0.6],
        };
        let r = fit(&ctx, "test", &cfg, 1, &data, &mut t).unwrap();
        // best after epoch 2 (0.8); epochs 3 and 4 do not improve → stop after 4
        assert_eq!(r.best_epoch, 2);
        assert!(r.stopped_early);
        assert_eq!(
            r.curve.iter().map(|e| e.val_loss).collect::<Vec<_>>(),
            vec![1.0, 0.8, 0.9, 0.85]
        );
        assert_eq!(t.steps, 4, "restored to the weights after epoch 2");
        let val_acc = accuracy(&data.role(Role::Val).labels, &[0.9, 0.9]);
        assert_eq!(r.curve[0].val_acc, val_acc);
        let log = seen.0.lock().unwrap();
        assert_eq!(log.first().map(|l| l.as_str()), Some("start test 10"));
        assert!(
            log.contains(&"1 epoch 2 batch 2/2 loss 0.5000".to_string()),
            "{log:?}"
        );
        assert!(
            log.contains(&format!(
                "2 loss 0.5000 val loss 0.8000 val acc {val_acc:.1}%"
            )),
            "{log:?}"
        );
        let path = dir.path().join("curve.csv");
        write_curve(&path, &r.curve).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("epoch,train_loss,val_loss,val_acc,quiz_loss,fb_ratio\n1,0.5,1,"),
            "{text}"
        );
    }
}
