//! `rolechain clock [advance DURATION]`: shows or moves the running twin's clock
//! (`/_rolechain/clock`), so credentials' expiry and refresh can be watched in seconds.

use std::path::PathBuf;

use http::Method;
use serde_json::{json, Value};

use crate::local;
use crate::twin_api::TwinApi;

/// Options of `rolechain clock`.
#[derive(Debug, Clone, clap::Args)]
pub struct ClockArgs {
    #[command(subcommand)]
    pub command: Option<ClockCommand>,
    /// The data directory `rolechain up` uses.
    #[arg(long, global = true, value_name = "DIR", env = "ROLECHAIN_DATA_DIR", default_value = local::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// The running twin's URL (default: the one `up` recorded in the data directory).
    #[arg(long, global = true, value_name = "URL", env = "ROLECHAIN_ENDPOINT")]
    pub twin: Option<String>,
}

/// What to do with the clock (nothing: show it).
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ClockCommand {
    /// Move the twin's clock forward: sessions, the tokens it verifies, `aws:CurrentTime` and IAM
    /// propagation follow it (SigV4 signing keeps real time). `55m`, `90s`, `1500ms`, `2h`.
    Advance {
        /// How far: a number with ms, s, m or h, or seconds.
        #[arg(value_parser = crate::up::parse_delay)]
        by: std::time::Duration,
    },
}

/// Asks or moves the clock; returns what to print.
///
/// # Errors
///
/// When the twin cannot be asked or refuses (an advance past ten years in all).
pub async fn run(args: &ClockArgs) -> anyhow::Result<String> {
    let (base, from) = local::twin_endpoint(args.twin.as_deref(), &args.data_dir);
    let api = TwinApi::new(base, from);
    let answer = match &args.command {
        None => api.call(Method::GET, "/_rolechain/clock", None).await?,
        Some(ClockCommand::Advance { by }) => {
            let body = json!({"advance": format!("{}ms", by.as_millis())});
            api.call(Method::POST, "/_rolechain/clock", Some(&body))
                .await?
        }
    };
    let answer = answer.ok()?;
    let field = |name: &str| answer.text(name);
    let offset = answer
        .body
        .get("offsetSeconds")
        .and_then(Value::as_f64)
        .unwrap_or_default();
    Ok(format!(
        "twin's now: {} ({}s ahead of real time, {})\n",
        field("now"),
        offset,
        field("realNow")
    ))
}
