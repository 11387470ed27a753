//! The twin's AWS services, wired to the store.

use std::sync::Arc;

use twin::{
    Authorizer, ClusterLifecycle, EksAuthConfig, EksAuthService, EksService, IamService, S3Service,
    StoreAuthenticator, StsConfig, StsService, TwinServer,
};
use twin_state::Store;

/// Registers every AWS service the twin serves on `server`, over `store`, recording their
/// decisions in the server's decision log.
///
/// STS and EKS Auth verify tokens through each issuer's discovery document and JWKS over
/// HTTP, as AWS does, also for the clusters whose issuer the twin itself serves; they share
/// one verifier (one JWKS cache). EKS Auth assumes roles through the STS service, so its trust
/// decisions and sessions are STS's own. EKS creates and deletes clusters, `clusters` serving
/// their issuers.
pub fn register(
    server: &mut TwinServer,
    store: &Arc<Store>,
    eks_auth: EksAuthConfig,
    clusters: Arc<dyn ClusterLifecycle>,
) -> anyhow::Result<()> {
    let decisions = server.decisions().clone();
    server.register(Arc::new(IamService::new(
        Arc::clone(store),
        decisions.clone(),
    )))?;
    let authenticator = Arc::new(StoreAuthenticator::new(Arc::clone(store)));
    let verifier = Arc::new(oidc::Verifier::new(oidc::HttpSource::default()));
    let sts = StsService::new(
        Arc::clone(store),
        authenticator.clone(),
        Authorizer::new(Arc::clone(store), decisions.clone()),
        Arc::clone(&verifier),
        StsConfig::default(),
    );
    server.register(Arc::new(sts.clone()))?;
    server.register(Arc::new(EksService::with_cluster_lifecycle(
        Arc::clone(store),
        decisions.clone(),
        clusters,
    )))?;
    server.register(Arc::new(EksAuthService::new(
        Arc::clone(store),
        authenticator,
        Authorizer::new(Arc::clone(store), decisions.clone()),
        verifier,
        sts,
        eks_auth,
    )))?;
    // S3 reads request bodies itself (streamed uploads), so it is registered as streaming.
    server.register_streaming(Arc::new(S3Service::new(Arc::clone(store), decisions)))?;
    Ok(())
}
