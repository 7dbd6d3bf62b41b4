//! SIGINT and SIGTERM on `pipe run`: the first sets a flag the scheduler checks (it
//! cancels running instances and leaves the cache clean); a second one ends the
//! process at once, with the exit code of an interrupt.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};

/// The interrupt flag, set by the first SIGINT / SIGTERM.
pub(crate) fn interrupt_flag() -> std::io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        // order matters: the conditional exit sees the flag before this call sets it
        signal_hook::flag::register_conditional_shutdown(
            sig,
            crate::exit_codes::INTERRUPTED,
            flag.clone(),
        )?;
        signal_hook::flag::register(sig, flag.clone())?;
    }
    Ok(flag)
}
