//! `predictions.csv`: one row per test window (`subject,trial,window,y,p_high`),
//! written by every training stage and read back by `evaluate`, so that every
//! reported number can be recomputed from the predictions.

use std::fmt::Write as _;
use std::path::Path;

use crate::stage::{IoContext, StageError};
use crate::train::dataset::WindowId;
use crate::train::metrics::{predict, Confusion};

pub(crate) const PREDICTIONS: &str = "predictions.csv";
/// The teacher's predictions where a stage also outputs an updated teacher (V3).
pub(crate) const TEACHER_PREDICTIONS: &str = "teacher_predictions.csv";
const HEADER: &str = "subject,trial,window,y,p_high";

/// One test window's label and predicted probability of the high class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Prediction {
    pub id: WindowId,
    pub y: u8,
    pub p_high: f32,
}

/// The confusion matrix of a set of predictions.
pub(crate) fn confusion(preds: &[Prediction]) -> Confusion {
    let y: Vec<u8> = preds.iter().map(|p| p.y).collect();
    let pred: Vec<u8> = preds.iter().map(|p| predict(p.p_high)).collect();
    Confusion::from_pairs(&y, &pred)
}

pub(crate) fn write_predictions(path: &Path, preds: &[Prediction]) -> Result<(), StageError> {
    let mut text = String::with_capacity(32 * (preds.len() + 1));
    text.push_str(HEADER);
    text.push('\n');
    for p in preds {
        let _ = writeln!(
            text,
            "{},{},{},{},{}",
            p.id.subject, p.id.trial, p.id.window, p.y, p.p_high
        );
    }
    std::fs::write(path, text).at(path)
}

pub(crate) fn read_predictions(path: &Path) -> Result<Vec<Prediction>, StageError> {
    let text = std::fs::read_to_string(path).at(path)?;
    let mut lines = text.lines();
    match lines.next() {
        Some(h) if h.trim() == HEADER => {}
        other => {
            return Err(StageError::bad_file(
                path,
                format!("header is {:?}, expected {HEADER:?}", other.unwrap_or("")),
            ))
        }
    }
    let mut out = Vec::new();
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let line_no = i + 2;
        let bad =
            |what: &str| StageError::bad_file(path, format!("line {line_no}: {what}: {line:?}"));
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() != 5 {
            return Err(bad("expected 5 fields"));
        }
        let int = |s: &str| s.parse::<u16>().map_err(|_| bad("not an integer"));
        let y: u8 = f[3].parse().map_err(|_| bad("y is not 0 or 1"))?;
        if y > 1 {
            return Err(bad("y is not 0 or 1"));
        }
        let p_high: f32 = f[4].parse().map_err(|_| bad("p_high is not a number"))?;
        if !(0.0..=1.0).contains(&p_high) {
            return Err(bad("p_high is not a probability"));
        }
        out.push(Prediction {
            id: WindowId {
                subject: int(f[0])?,
                trial: int(f[1])?,
                window: int(f[2])?,
            },
            y,
            p_high,
        });
    }
    if out.is_empty() {
        return Err(StageError::bad_file(path, "no predictions"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(PREDICTIONS);
        let preds = vec![
            Prediction {
                id: WindowId {
                    subject: 1,
                    trial: 2,
                    window: 3,
                },
                y: 1,
                p_high: 0.75,
            },
            Prediction {
                id: WindowId {
                    subject: 4,
                    trial: 5,
                    window: 0,
                },
                y: 0,
                p_high: 0.125,
            },
        ];
        write_predictions(&path, &preds).unwrap();
        assert_eq!(read_predictions(&path).unwrap(), preds);
        assert_eq!(confusion(&preds).accuracy(), 100.0);
        std::fs::write(&path, "subject,trial,window,y,p_high\n1,2,3,1\n").unwrap();
        let e = read_predictions(&path).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("5 fields"), "{e}");
        std::fs::write(&path, "a,b\n").unwrap();
        assert!(read_predictions(&path)
            .unwrap_err()
            .to_string()
            .contains("header"));
        std::fs::write(&path, "subject,trial,window,y,p_high\n1,2,3,1,NaN\n").unwrap();
        assert!(read_predictions(&path)
            .unwrap_err()
            .to_string()
            .contains("probability"));
    }
}
