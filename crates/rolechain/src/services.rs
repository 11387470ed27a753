//! The twin's AWS services, wired to the store.

use std::sync::Arc;

use twin::TwinServer;
use twin_state::Store;

/// Registers every AWS service the twin serves.
pub fn register(_server: &mut TwinServer, _store: &Arc<Store>) -> anyhow::Result<()> {
    Ok(())
}
