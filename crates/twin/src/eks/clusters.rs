//! EKS clusters: `CreateCluster`, `DescribeCluster`, `ListClusters`, `DeleteCluster`.
//!
//! A created cluster is `ACTIVE` at once (the twin has no control plane to wait for) and has an
//! OIDC issuer of its own, with a fresh id, as a new EKS cluster has: seed 000's blue/green
//! note. Serving that issuer is the [`ClusterLifecycle`]'s part (under `rolechain up`: signing
//! keys in the data directory, the issuer record `cluster token` reads, a node agent). Deleting
//! a cluster deletes its Pod Identity associations and service accounts with it, and its issuer
//! is no longer served, so its tokens stop verifying (the IAM OIDC provider, as in AWS, stays).

use awswire::{AwsError, HttpResponse};
use serde_json::{json, Value};
use twin_state::{Cluster, NewCluster};

use super::associations::{check_tags, role_account};
use super::{cluster_arn, max_results, printable, query_params, Call, Eks, JsonBody, Out};
use crate::failure::Failure;
use crate::service::BoxFuture;

/// The service principal a cluster's role is passed to.
const EKS_PRINCIPAL: &str = "eks.amazonaws.com";

/// What serves a created cluster's OIDC issuer, and stops serving a deleted one's.
///
/// `created` runs once the cluster is stored and before `CreateCluster` answers, so a client
/// that gets the answer can mint tokens for the cluster at once; `deleted` once it is removed.
pub trait ClusterLifecycle: Send + Sync + std::fmt::Debug {
    /// The issuer URL a new cluster gets: a new id each time, so a cluster created again under
    /// the same name has another issuer, as in EKS.
    fn new_issuer_url(&self) -> String;

    /// Serves `cluster`'s issuer. An error fails `CreateCluster` (`ServerException`) and the
    /// cluster is removed again.
    fn created(&self, cluster: Cluster) -> BoxFuture<'static, Result<(), String>>;

    /// Stops serving `cluster`'s issuer (and whatever else `created` started for it).
    fn deleted(&self, cluster: Cluster) -> BoxFuture<'static, ()>;
}

/// A cluster created or deleted by a request, for the [`ClusterLifecycle`] once the store has
/// committed it.
#[derive(Debug)]
pub(super) enum ClusterEvent {
    Created(Cluster),
    Deleted(Cluster),
}

/// EKS's `Cluster` with what the twin knows about a cluster: no endpoint, network or
/// certificate data is invented.
pub(super) fn render_cluster(cluster: &Cluster, status: &str) -> Value {
    let mut out = json!({
        "name": cluster.name,
        "arn": cluster.arn,
        "createdAt": awswire::epoch_seconds(cluster.created),
        "identity": { "oidc": { "issuer": cluster.issuer_url } },
        "status": status,
        "tags": cluster.tags,
    });
    if let Some(role) = &cluster.role_arn {
        out["roleArn"] = json!(role);
    }
    if let Some(version) = &cluster.version {
        out["version"] = json!(version);
    }
    out
}

fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::invalid_parameter_exception(message)
}

impl Call<'_> {
    pub(super) fn list_clusters(&self) -> Out {
        let query = query_params(self.req)?;
        let max = max_results(&query)?;
        let resource = cluster_arn(self.region(), &self.account, "*");
        self.authorize("eks:ListClusters", &resource, &|_| {})?;
        let names: Vec<String> = self
            .inner
            .store
            .list_clusters(&self.account, self.region())?
            .into_iter()
            .map(|c| c.name)
            .collect();
        // The token is the name of the first cluster of the next page.
        let start = match query.get("nextToken") {
            None => 0,
            Some(t) => names.iter().position(|n| n == t).ok_or_else(|| {
                AwsError::invalid_parameter_exception("The nextToken is not valid.")
            })?,
        };
        let page: Vec<&String> = names.iter().skip(start).take(max).collect();
        let mut body = json!({ "clusters": page });
        if let Some(next) = names.get(start + max) {
            body["nextToken"] = json!(next);
        }
        self.ok(&body)
    }

    pub(super) fn describe_cluster(&self, name: &str) -> Out {
        let cluster = self.cluster(name, "eks:DescribeCluster")?;
        self.ok(&json!({ "cluster": render_cluster(&cluster, "ACTIVE") }))
    }

    /// `CreateCluster`: `name`, `roleArn` (a role of the caller's account that exists, passed to
    /// `eks.amazonaws.com`) and `resourcesVpcConfig` (an object; the twin has no network to
    /// place the cluster in, so its members are not kept) are required; `version` and `tags`
    /// are kept; the other members of EKS's request are accepted and ignored.
    pub(super) fn create_cluster(&self) -> Result<(HttpResponse, ClusterEvent), Failure<Eks>> {
        let body = JsonBody::parse(&self.req.body)?;
        let name = body.required_str("name")?;
        let role_arn = body.required_str("roleArn")?;
        match body.value("resourcesVpcConfig") {
            None => return Err(super::missing("resourcesVpcConfig").into()),
            Some(Value::Object(_)) => {}
            Some(_) => {
                return Err(super::serialization(
                    "The member 'resourcesVpcConfig' must be a JSON object.",
                )
                .into())
            }
        }
        let version = body.str("version")?;
        let tags = body.string_map("tags")?.unwrap_or_default();
        let Some(lifecycle) = self.inner.clusters.as_ref() else {
            return Err(AwsError::new(
                "InvalidRequestException",
                "This twin does not create clusters: it was started without a way to serve their OIDC issuers.",
                400,
            ).into());
        };
        let arn = cluster_arn(self.region(), &self.account, &name);
        self.authorize("eks:CreateCluster", &arn, &|_| {})?;
        self.check_cluster_role(&role_arn)?;
        self.authorize("iam:PassRole", &role_arn, &|ctx| {
            ctx.set("iam:PassedToService", EKS_PRINCIPAL);
        })?;
        check_tags(&tags)?;
        if let Some(v) = &version {
            check_version(v)?;
        }
        let cluster = self.inner.store.create_cluster(&NewCluster {
            account: self.account.clone(),
            region: self.region().to_string(),
            name,
            issuer_url: lifecycle.new_issuer_url(),
            role_arn: Some(role_arn),
            version,
            tags,
        })?;
        tracing::info!(cluster = %cluster.arn, issuer = %cluster.issuer_url, "cluster created");
        let response = self.ok(&json!({ "cluster": render_cluster(&cluster, "ACTIVE") }))?;
        Ok((response, ClusterEvent::Created(cluster)))
    }

    /// `DeleteCluster`: the cluster, its associations and service accounts; answered with the
    /// cluster as it was, `DELETING` (EKS's answer; the twin has nothing left to wait for).
    pub(super) fn delete_cluster(
        &self,
        name: &str,
    ) -> Result<(HttpResponse, ClusterEvent), Failure<Eks>> {
        let cluster = self.cluster(name, "eks:DeleteCluster")?;
        let deleted =
            self.inner
                .store
                .delete_cluster(&cluster.account, &cluster.region, &cluster.name)?;
        tracing::info!(cluster = %deleted.arn, "cluster deleted");
        let response = self.ok(&json!({ "cluster": render_cluster(&deleted, "DELETING") }))?;
        Ok((response, ClusterEvent::Deleted(deleted)))
    }

    /// The cluster's role: a role ARN of the caller's account, for a role that exists.
    fn check_cluster_role(&self, role_arn: &str) -> Result<(), AwsError> {
        let (account, name) = role_account("roleArn", role_arn)?;
        if account != self.account {
            return Err(invalid(format!(
                "The roleArn {} is in account {account}; a cluster's role must be in the cluster's account {}.",
                printable(role_arn),
                self.account
            )));
        }
        if self.role_exists(&account, &name, role_arn)? {
            Ok(())
        } else {
            Err(invalid(format!(
                "Role with arn: {}, does not exist. Create it first (aws iam create-role), trusting eks.amazonaws.com.",
                printable(role_arn)
            )))
        }
    }
}

/// A Kubernetes version as EKS names them: `MAJOR.MINOR`.
fn check_version(version: &str) -> Result<(), AwsError> {
    let ok = version.split_once('.').is_some_and(|(major, minor)| {
        [major, minor]
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
    });
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "The version '{}' is not a Kubernetes version (MAJOR.MINOR, e.g. 1.31).",
            printable(version)
        )))
    }
}
