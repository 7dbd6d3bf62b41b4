//! The list of built-in stages. Adding a stage = implementing [`Stage`] and adding
//! one line here; the engine, the scheduler and the cache need no change.

use crate::stage::Stage;

/// Every built-in stage, in the order `pipe stages` lists them.
pub fn all() -> Vec<&'static dyn Stage> {
    let mut stages: Vec<&'static dyn Stage> = vec![
        // data
        &crate::data::synthetic_deap::SyntheticDeap,
        &crate::data::ingest_deap::IngestDeap,
        &crate::data::synthetic_mahnob::SyntheticMahnob,
        &crate::data::ingest_mahnob::IngestMahnob,
        &crate::data::windows::Windows,
        &crate::data::folds::Folds,
        // models and training
        &crate::train::supervised_stages::TrainTeacher,
        &crate::train::supervised_stages::TrainStudent,
        &crate::train::supervised_stages::TrainDeepConvNet,
        &crate::train::distill_stage::Distill,
        &crate::train::band_power::BandPower,
        // evaluation
        &crate::train::evaluate::Evaluate,
    ];
    if std::env::var_os("PIPE_TEST_STAGES").is_some() {
        stages.extend(crate::testing::all());
    }
    stages
}

/// Built-in stages that were renamed: (old name, new name). A pipeline file that
/// still uses an old name is told the new one.
pub const RENAMED: &[(&str, &str)] = &[("deepconvnet", "train-deepconvnet")];

/// The current name of a stage that was renamed from `old`.
pub fn renamed(old: &str) -> Option<&'static str> {
    RENAMED.iter().find(|(o, _)| *o == old).map(|(_, new)| *new)
}

/// The stage called `name`.
pub fn find(name: &str) -> Option<&'static dyn Stage> {
    all().into_iter().find(|s| s.name() == name)
}
