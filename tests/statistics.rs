//! What the report's statistics claim, on synthetic data where the truth is known:
//! under the null (EOG carries nothing) the EOG students are not declared above
//! chance and no student contrast is supported, in most seeds; with a strong planted
//! EEG effect the teacher − student contrast is detected.

use crate::util::Project;

/// Teacher, EOG student alone and a distilled student with small networks, per
/// (fold, repeat) cell: 3 folds × 2 repeats on 8 subjects × 40 trials of 4 s (about
/// 20 s a run on 2 cores).
const PIPELINE: &str = r#"
name: stats-check
params: { seed: 1, eeg: 2.5, eog: 3.5, noise: 1.0 }
stages:
  data:
    uses: synthetic-deap
    with: { subjects: 8, trials: 40, seconds: 4, eeg_effect: "${params.eeg}", eog_effect: "${params.eog}", label_noise: "${params.noise}", seed: "${params.seed}" }
  recordings: { uses: ingest-deap, needs: [data] }
  windows: { uses: windows, needs: [recordings], with: { window_s: 4, overlap: 0 } }
  splits:
    uses: folds
    needs: [windows]
    matrix: { repeat: "range(2)" }
    with: { k: 3, val_fraction: 0.2, seed: "${params.seed}" }
  teacher:
    uses: train-teacher
    needs: [windows, splits]
    matrix: &cells { target: [arousal], fold: "range(3)", repeat: "range(2)" }
    with: &small { temporal_filters: 4, kernel: 32, stride: 16, dim: 8, heads: 2, ffn_dim: 8, layers: 2, hidden: 8, dense_layers: 1, epochs: 15, patience: 0, batch_size: 32, lr: 0.003 }
  emotionnet:
    uses: train-student
    needs: [windows, splits]
    matrix: *cells
    with: *small
  v2:
    uses: distill
    needs: [teacher, windows, splits]
    matrix: *cells
    with: { temporal_filters: 4, kernel: 32, stride: 16, dim: 8, heads: 2, ffn_dim: 8, layers: 2, hidden: 8, dense_layers: 1, epochs: 15, patience: 0, batch_size: 32, lr: 0.003, kl: 0.1, feature: 1.0, feedback: none }
  scores:
    uses: evaluate
    needs: [teacher, emotionnet, v2]
    with:
      contrasts: [emotionnet - constant, v2 - constant, v2 - emotionnet, teacher - emotionnet]
"#;

/// The verdict column of each contrast row of the run report.
fn verdicts(p: &Project, sets: &[String]) -> Vec<(String, String)> {
    let mut args = vec!["run", "stats.yaml", "-q"];
    for s in sets {
        args.extend(["--set", s.as_str()]);
    }
    p.pipe(&args).ok();
    p.read("reports/stats-check/index.md")
        .lines()
        .filter(|l| l.contains(" − ") && l.starts_with("| "))
        .map(|l| {
            let cols: Vec<&str> = l.split('|').map(str::trim).collect();
            (cols[1].to_string(), cols[cols.len() - 2].to_string())
        })
        .collect()
}

#[test]
fn the_null_is_not_rejected_and_a_strong_effect_is_found() {
    let p = Project::new();
    p.write("stats.yaml", PIPELINE);
    let mut false_claims = 0;
    for seed in 1..=5 {
        let v = verdicts(&p, &[format!("params.seed={seed}"), "params.eog=0".into()]);
        assert_eq!(v.len(), 4, "{v:?}");
        let claimed: Vec<_> = v
            .iter()
            .filter(|(c, verdict)| !c.starts_with("teacher") && verdict.starts_with("supported"))
            .collect();
        if !claimed.is_empty() {
            eprintln!("seed {seed}: {claimed:?}");
            false_claims += 1;
        }
    }
    assert!(
        false_claims <= 1,
        "{false_claims} of 5 null seeds claimed an EOG effect"
    );

    // a strong planted EEG effect, exact labels: the teacher's lead must be found
    let v = verdicts(
        &p,
        &[
            "params.eeg=10".into(),
            "params.eog=0".into(),
            "params.noise=0".into(),
        ],
    );
    let teacher = v
        .iter()
        .find(|(c, _)| c == "teacher − emotionnet")
        .expect("contrast");
    assert!(
        teacher
            .1
            .starts_with("supported at α = 0.05 (Holm): teacher > emotionnet"),
        "{v:?}"
    );
}
