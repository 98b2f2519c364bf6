//! Which audited statement a server reply reports the outcome of: a simple Query's
//! own, or, in the extended protocol, the statement a Parse recorded, followed
//! through Bind (portal) and Execute to the Sync that ends its segment.

use std::collections::HashMap;

/// Audit ids waiting for an outcome, by where they are in the extended protocol.
#[derive(Debug, Default, Clone)]
pub struct Attribution {
    /// The audited statement id of the message being carried out, if recorded.
    pub current: Option<u64>,
    /// Audited statements first executed in the current extended-protocol segment,
    /// reported with the Sync that ends it.
    pub segment: Vec<u64>,
    /// Prepared statements (by name) whose audit record still waits for an outcome:
    /// the outcome of a Parse is its statement's first execution.
    unexecuted: HashMap<Vec<u8>, u64>,
    /// Portals bound from such statements (by name).
    portals: HashMap<Vec<u8>, u64>,
}

impl Attribution {
    /// A Parse was forwarded; its statement was audited as `id`, if at all.
    pub fn parsed(&mut self, name: Option<&[u8]>, id: Option<u64>) -> Option<u64> {
        match (id, name) {
            (Some(id), Some(name)) => {
                self.unexecuted.insert(name.to_vec(), id);
                Some(id)
            }
            (_, name) => {
                if let Some(name) = name {
                    if !self.unexecuted.is_empty() {
                        self.unexecuted.remove(name);
                    }
                }
                None
            }
        }
    }

    /// Whether Bind and Execute need to be read at all (nothing waits otherwise).
    pub fn tracking(&self) -> bool {
        !self.unexecuted.is_empty() || !self.portals.is_empty()
    }

    /// A Bind of `stmt` into `portal` was forwarded.
    pub fn bound(&mut self, portal: &[u8], stmt: &[u8]) {
        match self.unexecuted.get(stmt) {
            Some(&id) => {
                self.portals.insert(portal.to_vec(), id);
            }
            None => {
                self.portals.remove(portal);
            }
        }
    }

    /// An Execute of `portal` was forwarded: a statement's first execution joins the
    /// segment's outcome.
    pub fn executed(&mut self, portal: &[u8]) {
        if self.portals.is_empty() {
            return;
        }
        if let Some(id) = self.portals.remove(portal) {
            self.forget(&[id]);
            self.segment.push(id);
        }
    }

    /// These audited statements have their outcome: later executions are not theirs.
    pub fn forget(&mut self, ids: &[u64]) {
        if !self.unexecuted.is_empty() {
            self.unexecuted.retain(|_, id| !ids.contains(id));
        }
        if !self.portals.is_empty() {
            self.portals.retain(|_, id| !ids.contains(id));
        }
    }

    /// How many names are tracked (bounded by the server's own prepared statements
    /// and portals; the fuzz target checks it does not outgrow what was sent).
    pub fn tracked(&self) -> usize {
        self.unexecuted.len() + self.portals.len()
    }
}
