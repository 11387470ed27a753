//! The twin's AWS services, wired to the store.

use std::sync::Arc;

use twin::{Authorizer, IamService, StoreAuthenticator, StsConfig, StsService, TwinServer};
use twin_state::Store;

/// Registers every AWS service the twin serves on `server`, over `store`, recording their
/// decisions in the server's decision log.
///
/// STS verifies web identity tokens through each issuer's discovery document and JWKS over
/// HTTP, as AWS does, also for the clusters whose issuer the twin itself serves.
pub fn register(server: &mut TwinServer, store: &Arc<Store>) -> anyhow::Result<()> {
    let decisions = server.decisions().clone();
    server.register(Arc::new(IamService::new(
        Arc::clone(store),
        decisions.clone(),
    )))?;
    let sts = StsService::new(
        Arc::clone(store),
        Arc::new(StoreAuthenticator::new(Arc::clone(store))),
        Authorizer::new(Arc::clone(store), decisions),
        Arc::new(oidc::Verifier::new(oidc::HttpSource::default())),
        StsConfig::default(),
    );
    server.register(Arc::new(sts))?;
    Ok(())
}
