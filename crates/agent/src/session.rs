//! The session name and session tags each `AssumeRole` hop of a chain is made with.

use crate::associations::SessionTags;

/// STS's longest `RoleSessionName`.
const MAX_SESSION_NAME: usize = 64;

/// The pod a request came from, as its verified token names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PodIdentity {
    /// The pod's name (`kubernetes.io.pod.name`).
    pub name: String,
    /// The pod's uid (`kubernetes.io.pod.uid`).
    pub uid: String,
}

/// One session tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionTag {
    /// The key, e.g. `kubernetes-namespace`.
    pub key: &'static str,
    /// The value.
    pub value: String,
}

/// The `RoleSessionName` for a chain of `namespace`/`service_account` (and the pod, when its
/// credentials are the pod's own): `NAMESPACE.SERVICE-ACCOUNT[.POD]`, which STS's pattern
/// `[\w+=,.@-]{2,64}` always accepts for Kubernetes names. A longer name keeps its first
/// characters and ends in a hash of the whole, so two long names stay distinct.
pub fn session_name(namespace: &str, service_account: &str, pod: Option<&str>) -> String {
    let mut name = format!("{namespace}.{service_account}");
    if let Some(pod) = pod {
        name.push('.');
        name.push_str(pod);
    }
    // Anything STS would refuse (not possible with Kubernetes names, but the token is the
    // source) becomes '-'.
    let mut name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.len() > MAX_SESSION_NAME {
        let hash = fnv1a(name.as_bytes());
        name.truncate(MAX_SESSION_NAME - 9);
        name.push_str(&format!("-{:08x}", hash as u32));
    }
    name
}

/// FNV-1a: a stable, dependency-free hash, enough to tell truncated names apart (not a
/// security boundary: the name only labels the session).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The session tags of a hop, with the keys EKS Pod Identity uses (all transitive, so they
/// follow the chain): none, the cluster and service account, or those and the pod.
pub fn session_tags(
    mode: SessionTags,
    cluster_name: &str,
    cluster_arn: Option<&str>,
    namespace: &str,
    service_account: &str,
    pod: Option<&PodIdentity>,
) -> Vec<SessionTag> {
    let tag = |key, value: &str| SessionTag {
        key,
        value: value.to_string(),
    };
    let mut tags = match mode {
        SessionTags::None => return Vec::new(),
        SessionTags::ServiceAccount | SessionTags::Pod => {
            let mut tags = Vec::with_capacity(6);
            if let Some(arn) = cluster_arn {
                tags.push(tag("eks-cluster-arn", arn));
            }
            tags.push(tag("eks-cluster-name", cluster_name));
            tags.push(tag("kubernetes-namespace", namespace));
            tags.push(tag("kubernetes-service-account", service_account));
            tags
        }
    };
    if let (SessionTags::Pod, Some(pod)) = (mode, pod) {
        tags.push(tag("kubernetes-pod-name", &pod.name));
        tags.push(tag("kubernetes-pod-uid", &pod.uid));
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(name: &str) -> bool {
        (2..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
    }

    #[test]
    fn names_fit_stss_pattern_and_length() {
        assert_eq!(session_name("my-ns", "my-sa", None), "my-ns.my-sa");
        assert_eq!(
            session_name("my-ns", "my-sa", Some("web-7d4b9")),
            "my-ns.my-sa.web-7d4b9"
        );
        let long_ns = "n".repeat(63);
        let a = session_name(&long_ns, &"a".repeat(200), None);
        let b = session_name(&long_ns, &"b".repeat(200), None);
        for name in [&a, &b] {
            assert!(valid(name), "{name}");
            assert_eq!(name.len(), 64);
        }
        assert_ne!(a, b, "truncated names stay distinct");
        assert!(valid(&session_name("ns", "sa", Some("pod name/ü"))));
    }

    #[test]
    fn tags_follow_the_mode() {
        let pod = PodIdentity {
            name: "web-1".into(),
            uid: "uid-1".into(),
        };
        let arn = Some("arn:aws:eks:us-east-1:111111111111:cluster/c");
        assert!(session_tags(SessionTags::None, "c", arn, "ns", "sa", Some(&pod)).is_empty());
        let keys = |mode| -> Vec<&str> {
            session_tags(mode, "c", arn, "ns", "sa", Some(&pod))
                .iter()
                .map(|t| t.key)
                .collect()
        };
        assert_eq!(
            keys(SessionTags::ServiceAccount),
            [
                "eks-cluster-arn",
                "eks-cluster-name",
                "kubernetes-namespace",
                "kubernetes-service-account"
            ]
        );
        assert_eq!(keys(SessionTags::Pod).len(), 6);
        let tags = session_tags(SessionTags::Pod, "c", arn, "ns", "sa", Some(&pod));
        assert_eq!(tags[5].value, "uid-1");
    }
}
