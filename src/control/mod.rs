//! The control database (`[control]`): holds kept in PostgreSQL so that several
//! pgwarden replicas serve one set of holds. Its own connection, never on the data
//! path: an allowed statement never waits for it; a statement that needs a hold is
//! refused while it is unreachable.

mod connect;
mod replica;
pub mod schema;
mod store;

pub use store::{ControlStore, ID_BLOCK};
