//! The store as a whole: opening it with every module's tables, and the operations that span
//! modules (`DeleteRole`, which instance profiles can refuse). The [`Store`] type, its
//! transactions and the table helpers are `db`'s; each kind of entity keeps its operations in
//! its own module (`accounts`, `roles`, `policies`, `oidc_providers`, `clusters`, `sessions`,
//! `buckets`, `pod_identity`, `instance_profiles`, `service_accounts`).

use std::path::Path;

pub use crate::db::{paginate_indexed, Store};
use crate::error::Result;
use crate::ids::IdSource;
pub use crate::oidc_providers::{oidc_provider_host_path, CreateOidcProvider, OidcAssociation};
pub use crate::policies::{CreatePolicy, ListPolicies, PolicyScope};
pub use crate::roles::CreateRole;
pub use crate::sessions::NewSession;
use crate::{buckets, instance_profiles, pod_identity, service_accounts};

impl Store {
    /// Opens (creating if needed) the store in `dir`, in the file `twin-state.redb`. A store
    /// left by a killed process is recovered to its last committed transaction, and what it
    /// left among the S3 bodies is removed (see [`buckets`]).
    ///
    /// The directory and all in it are the owner's only (0700 directories, 0600 files),
    /// whatever the umask: the database holds every secret access key. A directory an older
    /// version left more open is closed up here.
    pub fn open(dir: impl AsRef<Path>) -> Result<Store> {
        let store = Store::open_with_tables(
            dir.as_ref(),
            &[
                pod_identity::create_tables,
                instance_profiles::create_tables,
                buckets::create_tables,
                service_accounts::create_tables,
            ],
        )?;
        buckets::cleanup::remove_leftovers(&store)?;
        Ok(store)
    }

    /// `DeleteRole`: fails with `DeleteConflict` while the role is in an instance profile or
    /// has policies attached or inline; ends the role's sessions.
    pub fn delete_role(&self, account: &str, name: &str) -> Result<()> {
        self.write_with_raw(IdSource::Os, |tx, txn| {
            crate::instance_profiles::check_role_not_in_profile(txn, account, name)?;
            tx.delete_role(account, name)
        })
    }
}
