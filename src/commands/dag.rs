//! `pipe dag FILE --format text|dot|mermaid`.

use crate::cli::DagArgs;
use crate::exit_codes;
use crate::graph::render;

use super::Failure;

pub(super) fn dag(args: DagArgs) -> Result<i32, Failure> {
    let (loaded, dag) = super::load(&args.pipeline)?;
    print!(
        "{}",
        render::render(&dag, args.format, loaded.pipeline.variations.len())
    );
    Ok(exit_codes::OK)
}
