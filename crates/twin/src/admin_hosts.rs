//! The `Host` values the twin's admin routes answer to (`AdminHosts`).

/// The `Host` values the admin endpoints answer to: the address the twin listens on, the
/// loopback names with its port (`localhost`, `127.0.0.1`, `[::1]`), and the authority of
/// its public URL. A browser page that rebinds its own DNS name to 127.0.0.1 still sends its
/// own name as `Host`, so it gets 421 instead of the decision log.
#[derive(Debug, Clone)]
pub(crate) struct AdminHosts(Vec<String>);

impl AdminHosts {
    pub(crate) fn new(local: std::net::SocketAddr, base_url: &str) -> AdminHosts {
        let port = local.port();
        let mut hosts = vec![
            local.to_string(),
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
        ];
        let authority = base_url
            .split_once("://")
            .map_or(base_url, |(_, rest)| rest)
            .split('/')
            .next()
            .unwrap_or_default();
        if !authority.is_empty() {
            hosts.push(authority.to_string());
        }
        // A client omits the port when it is the scheme's default.
        let defaults: Vec<String> = hosts
            .iter()
            .filter_map(|h| h.strip_suffix(":80").map(str::to_string))
            .collect();
        hosts.extend(defaults);
        for h in &mut hosts {
            h.make_ascii_lowercase();
        }
        hosts.sort_unstable();
        hosts.dedup();
        AdminHosts(hosts)
    }

    /// True when `host` (a `Host` header's value) is one of the twin's own names.
    pub(crate) fn allows(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        self.0.contains(&host)
    }
}
