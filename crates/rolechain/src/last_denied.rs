//! `rolechain explain --last-denied`: the most recent denial of a running twin, explained.

use std::time::Duration;

use anyhow::{bail, Context as _};
use time::format_description::well_known::Rfc3339;
use twin::{DecisionEntry, Outcome};

/// Decision logs are bounded, but a trace over many policies can be large.
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// What `--last-denied` found.
pub enum LastDenied {
    /// The rendered denial (text or JSON).
    Found(String),
    /// The twin has recorded no denial since it started.
    None,
}

/// Asks the twin at `twin_url` (found through `from`, for messages) for its newest denial and
/// renders it.
///
/// # Errors
///
/// When the twin cannot be reached or answers with something that is not a decision log.
pub async fn fetch(twin_url: &str, from: &str, json: bool) -> anyhow::Result<LastDenied> {
    let url = format!(
        "{}/_rolechain/decisions?verdict=deny&limit=1",
        twin_url.trim_end_matches('/')
    );
    // The OIDC crate's HTTP source is a plain, size-capped `GET` with timeouts: what is needed
    // here too.
    let client = oidc::HttpSource::new(oidc::HttpSourceConfig {
        connect_timeout: Duration::from_secs(3),
        request_timeout: Duration::from_secs(10),
        max_body_bytes: MAX_RESPONSE_BYTES,
        ..oidc::HttpSourceConfig::default()
    });
    let body = client.get(&url).await.with_context(|| {
        format!(
            "asking the twin at {twin_url}, from {from} (is `rolechain up` running there? see --twin and --data-dir)"
        )
    })?;
    let mut entries: Vec<DecisionEntry> = serde_json::from_slice(&body)
        .with_context(|| format!("{url} did not answer with a decision log"))?;
    let Some(entry) = entries.pop() else {
        return Ok(LastDenied::None);
    };
    if !entry.is_denied() {
        bail!("{url} answered with an allowed decision when asked for denials");
    }
    if json {
        let mut text = serde_json::to_string_pretty(&entry)?;
        text.push('\n');
        return Ok(LastDenied::Found(text));
    }
    Ok(LastDenied::Found(render(&entry)))
}

fn render(entry: &DecisionEntry) -> String {
    let time = entry
        .time
        .format(&Rfc3339)
        .unwrap_or_else(|_| entry.time.to_string());
    let header = format!(
        "Decision #{} by the twin's {} at {time}\n\n",
        entry.id, entry.service
    );
    match &entry.outcome {
        Outcome::Decided(decision) => {
            header
                + &explain::render_asked(
                    decision,
                    &explain::Asked {
                        caller: &entry.caller,
                        action: &entry.action,
                        resource: &entry.resource,
                        resource_account: None,
                    },
                )
        }
        Outcome::Refused(refusal) => {
            let mut text = format!(
                "{header}REFUSED: {} on {}\n  caller: {}\n\nWhy: {}: {}\nNo policy was evaluated: the request failed this step before any could decide.\n",
                entry.action, entry.resource, entry.caller, refusal.code, refusal.message
            );
            if !refusal.details.is_empty() {
                let width = refusal
                    .details
                    .iter()
                    .map(|d| d.name.len())
                    .max()
                    .unwrap_or(0);
                text.push_str("\nWhat the twin saw:\n");
                for d in &refusal.details {
                    text.push_str(&format!(
                        "  {:width$}  {}\n",
                        format!("{}:", d.name),
                        d.value,
                        width = width + 1
                    ));
                }
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_twin_url_is_where_up_listens() {
        assert_eq!(
            explain::DEFAULT_TWIN_URL,
            format!("http://{}", twin::DEFAULT_LISTEN)
        );
    }
}
