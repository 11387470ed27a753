//! `rolechain agent init`: the agent's link-local addresses on a dummy link, through netlink
//! (rtnetlink), as the EKS Pod Identity agent's init container sets them up. Idempotent: an
//! existing link or address is kept.

use std::net::IpAddr;

use anyhow::{bail, Context as _};
use futures_util::TryStreamExt as _;

/// Options of `rolechain agent init`.
#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    /// The link to put the addresses on: created as a dummy link when missing; an existing
    /// link (even `lo`) is used as it is.
    #[arg(long, default_value = "rolechain0")]
    pub link: String,
    /// The IPv4 address (with prefix) to add; it must succeed.
    #[arg(long, value_name = "CIDR", default_value = "169.254.170.23/32")]
    pub ipv4: String,
    /// The IPv6 address (with prefix) to add when the node has IPv6; a failure is reported
    /// and skipped, as the agent then serves on IPv4 alone. `none` skips it.
    #[arg(long, value_name = "CIDR", default_value = "fd00:ec2::23/128")]
    pub ipv6: String,
}

fn cidr(text: &str) -> anyhow::Result<(IpAddr, u8)> {
    let (ip, prefix) = text
        .split_once('/')
        .with_context(|| format!("{text:?} is not ADDRESS/PREFIX"))?;
    let ip: IpAddr = ip
        .parse()
        .with_context(|| format!("{ip:?} is not an IP address"))?;
    let prefix: u8 = prefix
        .parse()
        .with_context(|| format!("{prefix:?} is not a prefix length"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        bail!("prefix /{prefix} is longer than {max} bits");
    }
    Ok((ip, prefix))
}

/// What `init` did, one line per step.
pub async fn init(args: &InitArgs) -> anyhow::Result<Vec<String>> {
    let ipv4 = cidr(&args.ipv4).context("--ipv4")?;
    if !ipv4.0.is_ipv4() {
        bail!("--ipv4 {} is not an IPv4 address", args.ipv4);
    }
    let ipv6 = if args.ipv6 == "none" {
        None
    } else {
        let ipv6 = cidr(&args.ipv6).context("--ipv6")?;
        if !ipv6.0.is_ipv6() {
            bail!("--ipv6 {} is not an IPv6 address", args.ipv6);
        }
        Some(ipv6)
    };
    let (connection, handle, _) =
        rtnetlink::new_connection().context("opening a netlink socket")?;
    tokio::spawn(connection);
    let mut report = Vec::new();

    let find = |name: String| {
        let handle = handle.clone();
        async move {
            match handle
                .link()
                .get()
                .match_name(name)
                .execute()
                .try_next()
                .await
            {
                Ok(Some(link)) => Ok(Some(link.header.index)),
                Ok(None) => Ok(None),
                // The kernel answers "no such device" as an error.
                Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -ENODEV => Ok(None),
                Err(e) => Err(e),
            }
        }
    };
    let index = match find(args.link.clone())
        .await
        .context("looking up the link")?
    {
        Some(index) => {
            report.push(format!("link {} exists", args.link));
            index
        }
        None => {
            handle
                .link()
                .add(rtnetlink::LinkDummy::new(&args.link).build())
                .execute()
                .await
                .map_err(|e| {
                    let hint = match &e {
                        rtnetlink::Error::NetlinkError(m) if m.raw_code() == -EOPNOTSUPP => {
                            "this kernel has no dummy links (module `dummy`); name an existing link with --link, e.g. --link lo"
                        }
                        _ => "this needs CAP_NET_ADMIN in the node's network namespace",
                    };
                    anyhow::anyhow!("creating dummy link {}: {e}: {hint}", args.link)
                })?;
            report.push(format!("link {} created (dummy)", args.link));
            find(args.link.clone())
                .await
                .context("looking up the new link")?
                .with_context(|| format!("link {} vanished after creation", args.link))?
        }
    };
    handle
        .link()
        .set(rtnetlink::LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .with_context(|| format!("setting link {} up", args.link))?;

    let add = |(ip, prefix): (IpAddr, u8)| {
        let handle = handle.clone();
        async move {
            handle
                .address()
                .add(index, ip, prefix)
                .replace()
                .execute()
                .await
        }
    };
    add(ipv4)
        .await
        .with_context(|| format!("adding {} to {}", args.ipv4, args.link))?;
    report.push(format!("{} on {}", args.ipv4, args.link));
    if let Some(ipv6) = ipv6 {
        match add(ipv6).await {
            Ok(()) => report.push(format!("{} on {}", args.ipv6, args.link)),
            // No IPv6 on this node: the agent serves on IPv4, as `--bind` allows.
            Err(e) => report.push(format!("{} skipped: {e}", args.ipv6)),
        }
    }
    Ok(report)
}

/// ENODEV, "no such device": what the kernel answers a lookup of a missing link with.
const ENODEV: i32 = 19;
/// EOPNOTSUPP: the kernel cannot make a link of that kind.
const EOPNOTSUPP: i32 = 95;
