//! The manager behind the layer, with its store type erased, so that one
//! [`Session`](crate::Session) handle type serves every backend and an
//! application can pick its backend at run time.

use std::future::Future;
use std::pin::Pin;

use session_core::{
    Error, OwnedSession, Session, SessionData, SessionId, SessionManager, SessionStore, StoreKey, Timestamp,
};

type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// The [`SessionManager`] calls the layer makes, object safe. Each method
/// forwards to the manager's method of the same name.
pub(crate) trait Backend: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
    fn load<'a>(&'a self, id: &'a SessionId) -> Fut<'a, Option<Session>>;
    fn save<'a>(&'a self, session: &'a mut Session) -> Fut<'a, ()>;
    fn create_with(&self, data: SessionData, owner: Option<String>) -> Fut<'_, Session>;
    fn rotate<'a>(&'a self, session: &'a mut Session) -> Fut<'a, ()>;
    fn rotate_to_owner<'a>(&'a self, session: &'a mut Session, owner: String) -> Fut<'a, ()>;
    fn was_rotated<'a>(&'a self, id: &'a SessionId) -> Fut<'a, bool>;
    fn destroy<'a>(&'a self, id: &'a SessionId) -> Fut<'a, bool>;
    fn destroy_by_owner<'a>(&'a self, owner: &'a str) -> Fut<'a, u64>;
    fn list_by_owner<'a>(&'a self, owner: &'a str) -> Fut<'a, Vec<OwnedSession>>;
    fn destroy_owned<'a>(&'a self, owner: &'a str, key: &'a StoreKey) -> Fut<'a, bool>;
}

impl<S: SessionStore + ?Sized> Backend for SessionManager<S> {
    fn now(&self) -> Timestamp {
        SessionManager::now(self)
    }
    fn load<'a>(&'a self, id: &'a SessionId) -> Fut<'a, Option<Session>> {
        Box::pin(SessionManager::load(self, id))
    }
    fn save<'a>(&'a self, session: &'a mut Session) -> Fut<'a, ()> {
        Box::pin(SessionManager::save(self, session))
    }
    fn create_with(&self, data: SessionData, owner: Option<String>) -> Fut<'_, Session> {
        Box::pin(SessionManager::create_with(self, data, owner))
    }
    fn rotate<'a>(&'a self, session: &'a mut Session) -> Fut<'a, ()> {
        Box::pin(SessionManager::rotate(self, session))
    }
    fn rotate_to_owner<'a>(&'a self, session: &'a mut Session, owner: String) -> Fut<'a, ()> {
        Box::pin(SessionManager::rotate_to_owner(self, session, owner))
    }
    fn was_rotated<'a>(&'a self, id: &'a SessionId) -> Fut<'a, bool> {
        Box::pin(SessionManager::was_rotated(self, id))
    }
    fn destroy<'a>(&'a self, id: &'a SessionId) -> Fut<'a, bool> {
        Box::pin(SessionManager::destroy(self, id))
    }
    fn destroy_by_owner<'a>(&'a self, owner: &'a str) -> Fut<'a, u64> {
        Box::pin(SessionManager::destroy_by_owner(self, owner))
    }
    fn list_by_owner<'a>(&'a self, owner: &'a str) -> Fut<'a, Vec<OwnedSession>> {
        Box::pin(SessionManager::list_by_owner(self, owner))
    }
    fn destroy_owned<'a>(&'a self, owner: &'a str, key: &'a StoreKey) -> Fut<'a, bool> {
        Box::pin(SessionManager::destroy_owned(self, owner, key))
    }
}
