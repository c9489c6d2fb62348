//! The tower-sessions traits, implemented once per supported version by one
//! macro: the versions' `Record`, `Id` and `Error` are distinct types with
//! the same shape, and everything else is in `store.rs`.

/// Implements `SessionStore` and `ExpiredDeletion` of the tower-sessions
/// core crate `$core` for [`TowerStore`](crate::TowerStore).
macro_rules! implement_tower_traits {
    ($core:ident) => {
        use session_core::{Clock, Error};
        use $core::session::{Id, Record};
        use $core::session_store;

        /// Our errors as tower's. Messages never hold an id: ours never do,
        /// and this adds none.
        fn to_tower(e: Error) -> session_store::Error {
            match e {
                Error::Corrupt(m) => session_store::Error::Decode(m),
                Error::Serialize(m) => session_store::Error::Encode(m),
                other => session_store::Error::Backend(other.to_string()),
            }
        }

        #[async_trait::async_trait]
        impl<S: session_core::SessionStore, C: Clock> $core::SessionStore for crate::TowerStore<S, C> {
            async fn create(&self, record: &mut Record) -> session_store::Result<()> {
                let mut id = record.id.0;
                let created = self
                    .create_parts(&mut id, &record.data, record.expiry_date, || Id::default().0)
                    .await;
                record.id = Id(id);
                created.map_err(to_tower)
            }

            async fn save(&self, record: &Record) -> session_store::Result<()> {
                self.save_parts(record.id.0, &record.data, record.expiry_date)
                    .await
                    .map_err(to_tower)
            }

            async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
                let loaded = self.load_parts(session_id.0).await.map_err(to_tower)?;
                Ok(loaded.map(|(data, expiry_date)| Record {
                    id: *session_id,
                    data,
                    expiry_date,
                }))
            }

            async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
                self.delete_parts(session_id.0).await.map_err(to_tower)
            }
        }

        #[async_trait::async_trait]
        impl<S: session_core::SessionStore, C: Clock> session_store::ExpiredDeletion for crate::TowerStore<S, C> {
            async fn delete_expired(&self) -> session_store::Result<()> {
                self.delete_expired_parts().await.map_err(to_tower)
            }
        }
    };
}

/// tower-sessions 0.14 (axum-login 0.18, the published stores).
#[cfg(feature = "tower-sessions-0.14")]
mod tower_0_14 {
    implement_tower_traits!(tower_sessions_core_0_14);
}

/// tower-sessions 0.15.
#[cfg(feature = "tower-sessions-0.15")]
mod tower_0_15 {
    implement_tower_traits!(tower_sessions_core_0_15);
}
