//! The webhook's settings, with its defaults (its command-line flags).

/// How pods are mutated. [`Settings::default`] is the Amazon EKS Pod Identity webhook's
/// defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The annotation domain (`--annotation-prefix`): `eks.amazonaws.com`.
    pub annotation_domain: String,
    /// IRSA's default token audience (`--token-audience`): `sts.amazonaws.com`.
    pub audience: String,
    /// Where IRSA's token is mounted (`--token-mount-path`).
    pub mount_path: String,
    /// IRSA's default token lifetime in seconds (`--token-expiration`): 86400.
    pub token_expiration: i64,
    /// `AWS_REGION` and `AWS_DEFAULT_REGION` for mutated containers (`--aws-default-region`).
    pub region: Option<String>,
    /// Whether `AWS_STS_REGIONAL_ENDPOINTS=regional` is added unless the ServiceAccount says
    /// otherwise (`--sts-regional-endpoint`): false.
    pub regional_sts: bool,
    /// The container credentials (Pod Identity) mode's names.
    pub container_credentials: ContainerCredentials,
    /// For a container-credentials token with the default lifetime, a number the lifetime is
    /// spread by: 79,200 + (n mod 7,201) seconds, so tokens of pods started together do not all
    /// expire together (the webhook draws it at random). `None`: exactly the default.
    pub token_jitter: Option<u64>,
}

/// The container credentials mode's names (`--container-credentials-*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerCredentials {
    /// The token's audience: `pods.eks.amazonaws.com`.
    pub audience: String,
    /// Where the token is mounted.
    pub mount_path: String,
    /// The projected volume's name: `eks-pod-identity-token`.
    pub volume_name: String,
    /// The token file's name in the volume: `eks-pod-identity-token`.
    pub token_path: String,
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI`: the agent, `http://169.254.170.23/v1/credentials`.
    pub full_uri: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            annotation_domain: "eks.amazonaws.com".to_string(),
            audience: "sts.amazonaws.com".to_string(),
            mount_path: "/var/run/secrets/eks.amazonaws.com/serviceaccount".to_string(),
            token_expiration: DEFAULT_TOKEN_EXPIRATION,
            region: None,
            regional_sts: false,
            container_credentials: ContainerCredentials::default(),
            token_jitter: None,
        }
    }
}

impl Default for ContainerCredentials {
    fn default() -> Self {
        ContainerCredentials {
            audience: "pods.eks.amazonaws.com".to_string(),
            mount_path: "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount".to_string(),
            volume_name: "eks-pod-identity-token".to_string(),
            token_path: "eks-pod-identity-token".to_string(),
            full_uri: "http://169.254.170.23/v1/credentials".to_string(),
        }
    }
}

/// The default token lifetime: 24 hours, EKS's maximum.
pub(crate) const DEFAULT_TOKEN_EXPIRATION: i64 = 86_400;
/// The shortest lifetime the API server issues: 10 minutes.
pub(crate) const MIN_TOKEN_EXPIRATION: i64 = 600;
/// The jittered default's lower bound: 22 hours.
pub(crate) const DEFAULT_MIN_TOKEN_EXPIRATION: i64 = 79_200;
/// IRSA's volume and token file names (not configurable in the webhook either).
pub(crate) const IRSA_VOLUME: &str = "aws-iam-token";
pub(crate) const IRSA_TOKEN: &str = "token";
