//! The token issuer of a local cluster: persistent RS256 keys, rotation, discovery/JWKS
//! documents, and Kubernetes projected service-account tokens.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair as _, RsaKeyPair, RsaPublicKeyComponents, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::error::{IssuerError, SourceError};
use crate::jwt::b64_encode;
use crate::source::{BoxFuture, JwksSource};

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

/// Settings of an [`Issuer`].
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// The `iss` of minted tokens, exactly as verifiers will expect it (no trailing slash).
    pub issuer_url: String,
    /// Where the JWKS is served; defaults to `{issuer_url}/keys`, the path EKS uses.
    pub jwks_uri: Option<String>,
    /// Directory holding the private keys (created with mode 0700; key files are 0600).
    pub key_dir: PathBuf,
    /// Keys kept (and published) at once, the active one included. Default 3, minimum 1.
    pub max_keys: usize,
    /// Lifetime of minted tokens unless a request says otherwise. Default 1 hour.
    pub token_lifetime: Duration,
}

impl IssuerConfig {
    /// Defaults for everything but the issuer URL and key directory.
    pub fn new(issuer_url: impl Into<String>, key_dir: impl Into<PathBuf>) -> Self {
        IssuerConfig {
            issuer_url: issuer_url.into(),
            jwks_uri: None,
            key_dir: key_dir.into(),
            max_keys: 3,
            token_lifetime: Duration::from_secs(3600),
        }
    }
}

/// A Kubernetes object a token is bound to (a pod or a node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundObject {
    /// The object's name.
    pub name: String,
    /// The object's UID.
    pub uid: String,
}

/// What to put in a service-account token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The service account's namespace.
    pub namespace: String,
    /// The service account's name.
    pub service_account: String,
    /// The service account's UID.
    pub service_account_uid: String,
    /// `aud`, e.g. `["sts.amazonaws.com"]` for IRSA or `["pods.eks.amazonaws.com"]` for Pod
    /// Identity. At least one.
    pub audiences: Vec<String>,
    /// The pod the token is bound to, if any.
    pub pod: Option<BoundObject>,
    /// The node the pod runs on, if any.
    pub node: Option<BoundObject>,
    /// Overrides [`IssuerConfig::token_lifetime`].
    pub lifetime: Option<Duration>,
}

impl TokenRequest {
    /// A request for `system:serviceaccount:{namespace}:{service_account}` with one audience,
    /// not bound to a pod or node.
    pub fn new(
        namespace: impl Into<String>,
        service_account: impl Into<String>,
        service_account_uid: impl Into<String>,
        audience: impl Into<String>,
    ) -> Self {
        TokenRequest {
            namespace: namespace.into(),
            service_account: service_account.into(),
            service_account_uid: service_account_uid.into(),
            audiences: vec![audience.into()],
            pod: None,
            node: None,
            lifetime: None,
        }
    }

    fn validate(&self) -> Result<(), IssuerError> {
        // `sub` is `system:serviceaccount:NS:SA`; a ':' in either name would make it ambiguous.
        for (what, value) in [
            ("namespace", &self.namespace),
            ("service account name", &self.service_account),
        ] {
            if value.is_empty() || value.contains(':') {
                return Err(IssuerError::InvalidRequest(format!(
                    "{what} must be non-empty and contain no ':'"
                )));
            }
        }
        if self.audiences.is_empty() || self.audiences.iter().any(String::is_empty) {
            return Err(IssuerError::InvalidRequest(
                "at least one non-empty audience is required".to_string(),
            ));
        }
        Ok(())
    }
}

/// One signing key on disk and in memory.
struct SigningKey {
    sequence: u64,
    kid: String,
    pair: RsaKeyPair,
    /// The public JWK, precomputed: it is served far more often than keys change.
    jwk: Value,
}

impl SigningKey {
    fn from_pair(sequence: u64, pair: RsaKeyPair) -> SigningKey {
        let components = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        let n = b64_encode(&components.n);
        let e = b64_encode(&components.e);
        let kid = rsa_thumbprint(&n, &e);
        let jwk = json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": n, "e": e});
        SigningKey {
            sequence,
            kid,
            pair,
            jwk,
        }
    }
}

/// RFC 7638 thumbprint of an RSA public key: SHA-256 over the required members in
/// lexicographic order with no whitespace, base64url-encoded.
pub fn rsa_thumbprint(n_b64: &str, e_b64: &str) -> String {
    let canonical = format!(r#"{{"e":"{e_b64}","kty":"RSA","n":"{n_b64}"}}"#);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
    b64_encode(digest.as_ref())
}

/// Issues Kubernetes-style service-account tokens for a local cluster.
///
/// Keys live in [`IssuerConfig::key_dir`] as `key-NNNNNNNNNN.pem` (PKCS#8), the highest number
/// being the active signer. Only one process should manage a directory at a time. The issuer is
/// shareable across threads (`Arc<Issuer>`): minting takes a read lock, rotation a write lock.
pub struct Issuer {
    issuer_url: String,
    jwks_uri: String,
    key_dir: PathBuf,
    max_keys: usize,
    token_lifetime: Duration,
    /// Oldest first; the last one signs.
    keys: RwLock<Vec<Arc<SigningKey>>>,
    /// The key directory's modification time when last read, to notice keys rotated by
    /// another process (`rolechain cluster rotate-keys` while `rolechain up` serves).
    dir_seen: Mutex<Option<SystemTime>>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("issuer_url", &self.issuer_url)
            .field("key_dir", &self.key_dir)
            .field("kids", &self.kids())
            .finish_non_exhaustive()
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> IssuerError + '_ {
    move |source| IssuerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn key_file_name(sequence: u64) -> String {
    format!("key-{sequence:010}.pem")
}

fn parse_key_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("key-")?.strip_suffix(".pem")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn to_pem(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut pem = String::with_capacity(body.len() + body.len() / 64 + 64);
    pem.push_str(PEM_BEGIN);
    pem.push('\n');
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(PEM_END);
    pem.push('\n');
    pem
}

fn from_pem(text: &str) -> Option<Vec<u8>> {
    let start = text.find(PEM_BEGIN)? + PEM_BEGIN.len();
    let end = text[start..].find(PEM_END)? + start;
    let body: String = text[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(body).ok()
}

/// Refuses a key file others could read: a key copied in with a loose mode is not trusted.
fn check_private_file(path: &Path) -> Result<(), IssuerError> {
    if !private_fs::is_private(path).map_err(io_error(path))? {
        return Err(IssuerError::InsecurePermissions {
            path: path.to_path_buf(),
            mode: private_fs::mode(path).map_err(io_error(path))? & 0o777,
        });
    }
    Ok(())
}

/// Writes `contents` to `path` atomically with mode 0600 from the start, so the key is never
/// briefly world-readable nor half-written after a crash.
fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), IssuerError> {
    private_fs::write_atomic(path, contents).map_err(io_error(path))
}

/// The keys in `dir`, oldest first.
fn read_keys(dir: &Path) -> Result<Vec<Arc<SigningKey>>, IssuerError> {
    let mut keys = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let Some(sequence) = entry.file_name().to_str().and_then(parse_key_file_name) else {
            continue;
        };
        let path = entry.path();
        check_private_file(&path)?;
        let text = fs::read_to_string(&path).map_err(io_error(&path))?;
        let invalid = |reason: &str| IssuerError::InvalidKeyFile {
            path: path.clone(),
            reason: reason.to_string(),
        };
        let der = from_pem(&text).ok_or_else(|| invalid("no PKCS#8 PEM block"))?;
        let pair = RsaKeyPair::from_pkcs8(&der).map_err(|e| invalid(&e.to_string()))?;
        keys.push(Arc::new(SigningKey::from_pair(sequence, pair)));
    }
    keys.sort_by_key(|k| k.sequence);
    Ok(keys)
}

fn dir_modified(dir: &Path) -> Option<SystemTime> {
    fs::metadata(dir).and_then(|m| m.modified()).ok()
}

impl Issuer {
    /// Picks up keys another process added to or pruned from the key directory since it was
    /// last read (a stat when nothing changed). Returns true when the published keys changed.
    ///
    /// Blocking file I/O, like [`load_or_create`](Self::load_or_create). A directory left
    /// without valid keys keeps the keys already loaded, so the issuer never stops signing.
    pub fn reload_if_changed(&self) -> Result<bool, IssuerError> {
        let mut seen = self.dir_seen.lock().unwrap_or_else(PoisonError::into_inner);
        let now = dir_modified(&self.key_dir);
        if now.is_some() && now == *seen {
            return Ok(false);
        }
        let on_disk = read_keys(&self.key_dir)?;
        *seen = now;
        if on_disk.is_empty() {
            return Ok(false);
        }
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        let same = keys.len() == on_disk.len()
            && keys
                .iter()
                .zip(&on_disk)
                .all(|(a, b)| a.sequence == b.sequence);
        if same {
            return Ok(false);
        }
        *keys = on_disk;
        Ok(true)
    }

    /// Loads the keys in `config.key_dir`, creating the directory and a first key if there are
    /// none, and deleting the oldest keys beyond `config.max_keys`.
    ///
    /// Blocking (file I/O, and RSA key generation on first use takes tens of milliseconds):
    /// from async code, call it through `tokio::task::spawn_blocking`. A pre-existing directory
    /// keeps its permissions, but key files that group or others can access are refused.
    pub fn load_or_create(config: IssuerConfig) -> Result<Issuer, IssuerError> {
        let issuer_url = config.issuer_url;
        if !(issuer_url.starts_with("http://") || issuer_url.starts_with("https://"))
            || issuer_url.ends_with('/')
            || issuer_url.contains(['?', '#'])
        {
            return Err(IssuerError::InvalidConfig(format!(
                "issuer URL {issuer_url:?} must be http(s)://host[/path] without a trailing '/', query or fragment"
            )));
        }
        if config.max_keys == 0 {
            return Err(IssuerError::InvalidConfig(
                "max_keys must be at least 1".to_string(),
            ));
        }
        if config.token_lifetime.is_zero() {
            return Err(IssuerError::InvalidConfig(
                "token_lifetime must be positive".to_string(),
            ));
        }
        let dir = config.key_dir;
        private_fs::create_dir_all(&dir).map_err(io_error(&dir))?;

        let seen = dir_modified(&dir);
        let keys = read_keys(&dir)?;

        let issuer = Issuer {
            jwks_uri: config
                .jwks_uri
                .unwrap_or_else(|| format!("{issuer_url}/keys")),
            issuer_url,
            key_dir: dir,
            max_keys: config.max_keys,
            token_lifetime: config.token_lifetime,
            keys: RwLock::new(keys),
            dir_seen: Mutex::new(seen),
        };
        let mut keys = issuer.keys.write().unwrap_or_else(PoisonError::into_inner);
        if keys.is_empty() {
            issuer.add_key(&mut keys)?;
        } else {
            issuer.prune(&mut keys)?;
        }
        drop(keys);
        Ok(issuer)
    }

    fn add_key(&self, keys: &mut Vec<Arc<SigningKey>>) -> Result<String, IssuerError> {
        let sequence = keys.last().map_or(1, |k| k.sequence + 1);
        let pair = RsaKeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| IssuerError::Crypto("RSA key generation failed"))?;
        let der = pair
            .as_der()
            .map_err(|_| IssuerError::Crypto("PKCS#8 encoding failed"))?;
        let path = self.key_dir.join(key_file_name(sequence));
        write_private_file(&path, to_pem(der.as_ref()).as_bytes())?;
        let key = Arc::new(SigningKey::from_pair(sequence, pair));
        let kid = key.kid.clone();
        keys.push(key);
        self.prune(keys)?;
        Ok(kid)
    }

    fn prune(&self, keys: &mut Vec<Arc<SigningKey>>) -> Result<(), IssuerError> {
        while keys.len() > self.max_keys {
            let oldest = keys.remove(0);
            let path = self.key_dir.join(key_file_name(oldest.sequence));
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&path)(e)),
            }
        }
        Ok(())
    }

    /// Generates a new key and makes it the active signer. Older keys stay published so tokens
    /// they signed keep verifying; beyond `max_keys` the oldest is deleted. Returns the new kid.
    ///
    /// Blocking, like [`load_or_create`](Self::load_or_create); minting waits while it runs.
    pub fn rotate(&self) -> Result<String, IssuerError> {
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        self.add_key(&mut keys)
    }

    /// The `iss` of minted tokens.
    pub fn issuer_url(&self) -> &str {
        &self.issuer_url
    }

    /// Where the JWKS is to be served.
    pub fn jwks_uri(&self) -> &str {
        &self.jwks_uri
    }

    /// The kid of the active signing key.
    pub fn active_kid(&self) -> String {
        self.active_key().kid.clone()
    }

    /// The kids of all published keys, newest (active) first.
    pub fn kids(&self) -> Vec<String> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        keys.iter().rev().map(|k| k.kid.clone()).collect()
    }

    fn active_key(&self) -> Arc<SigningKey> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        // Never empty: load_or_create adds a key when there is none and prune keeps >= 1.
        keys.last()
            .map(Arc::clone)
            .unwrap_or_else(|| unreachable!("an Issuer always holds at least one key"))
    }

    /// The OIDC discovery document, to be served at
    /// `{issuer_url}/.well-known/openid-configuration`.
    pub fn discovery_document(&self) -> Value {
        json!({
            "issuer": self.issuer_url,
            "jwks_uri": self.jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        })
    }

    /// The JWKS (`{"keys": [...]}`) with every published key, newest first, to be served at
    /// [`jwks_uri`](Self::jwks_uri).
    pub fn jwks(&self) -> Value {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        json!({"keys": keys.iter().rev().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
    }

    /// Mints a token valid from now. See [`mint_at`](Self::mint_at).
    pub fn mint(&self, request: &TokenRequest) -> Result<String, IssuerError> {
        self.mint_at(request, SystemTime::now())
    }

    /// Mints a projected service-account token as the kubelet would receive it: header
    /// `{"alg":"RS256","kid":…}`, claims `aud` (array), `exp`, `iat`, `nbf` (= `iat`), `iss`,
    /// `jti`, `kubernetes.io` (namespace, service account, and the pod and node when given) and
    /// `sub` = `system:serviceaccount:NS:SA`.
    pub fn mint_at(&self, request: &TokenRequest, now: SystemTime) -> Result<String, IssuerError> {
        request.validate()?;
        let iat = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| IssuerError::InvalidRequest("time before 1970".to_string()))?
            .as_secs();
        let exp = iat.saturating_add(request.lifetime.unwrap_or(self.token_lifetime).as_secs());

        let mut kubernetes = serde_json::Map::new();
        kubernetes.insert("namespace".into(), json!(request.namespace));
        if let Some(node) = &request.node {
            kubernetes.insert("node".into(), json!({"name": node.name, "uid": node.uid}));
        }
        if let Some(pod) = &request.pod {
            kubernetes.insert("pod".into(), json!({"name": pod.name, "uid": pod.uid}));
        }
        kubernetes.insert(
            "serviceaccount".into(),
            json!({"name": request.service_account, "uid": request.service_account_uid}),
        );
        let claims = json!({
            "aud": request.audiences,
            "exp": exp,
            "iat": iat,
            "iss": self.issuer_url,
            "jti": random_uuid()?,
            "kubernetes.io": kubernetes,
            "nbf": iat,
            "sub": format!("system:serviceaccount:{}:{}", request.namespace, request.service_account),
        });
        let key = self.active_key();
        sign_rs256(&key.pair, &json!({"alg": "RS256", "kid": key.kid}), &claims)
    }
}

/// Signs `header.claims` with RS256 into a compact JWS.
fn sign_rs256(pair: &RsaKeyPair, header: &Value, claims: &Value) -> Result<String, IssuerError> {
    let mut token = b64_encode(header.to_string().as_bytes());
    token.push('.');
    token.push_str(&b64_encode(claims.to_string().as_bytes()));
    let mut signature = vec![0u8; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        token.as_bytes(),
        &mut signature,
    )
    .map_err(|_| IssuerError::Crypto("RS256 signing failed"))?;
    token.push('.');
    token.push_str(&b64_encode(&signature));
    Ok(token)
}

/// A random (version 4) UUID, the format the API server uses for `jti`.
fn random_uuid() -> Result<String, IssuerError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| IssuerError::Crypto("random source failed"))?;
    Ok(uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string())
}

/// Serves the issuer's own keys in-process, so a verifier in the same process needs no HTTP
/// round trip; always current, including right after [`Issuer::rotate`].
impl JwksSource for Issuer {
    fn fetch_jwks<'a>(&'a self, issuer: &'a str) -> BoxFuture<'a, Result<Vec<u8>, SourceError>> {
        let result = if issuer == self.issuer_url {
            Ok(self.jwks().to_string().into_bytes())
        } else {
            Err(SourceError::UnknownIssuer(crate::error::sanitize(issuer)))
        };
        Box::pin(std::future::ready(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_example() {
        // RFC 7638 §3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        assert_eq!(
            rsa_thumbprint(n, "AQAB"),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn key_file_names() {
        assert_eq!(parse_key_file_name(&key_file_name(42)), Some(42));
        for other in [
            "key-.pem",
            "key-1.pem.tmp",
            "key-x.pem",
            "other",
            "key-+1.pem",
        ] {
            assert_eq!(parse_key_file_name(other), None, "{other}");
        }
    }

    #[test]
    fn pem_round_trip() {
        let der: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        assert_eq!(from_pem(&to_pem(&der)), Some(der));
        assert_eq!(from_pem("garbage"), None);
    }

    #[test]
    fn uuid_shape() {
        let id = random_uuid().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, random_uuid().unwrap());
    }

    #[test]
    fn request_validation() {
        let ok = TokenRequest::new("ns", "sa", "uid", "sts.amazonaws.com");
        assert!(ok.validate().is_ok());
        let mut bad = ok.clone();
        bad.namespace = "a:b".into();
        assert!(bad.validate().is_err());
        let mut bad = ok.clone();
        bad.audiences.clear();
        assert!(bad.validate().is_err());
    }
}
