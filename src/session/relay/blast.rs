//! The relay's read of a DROP's or TRUNCATE's blast radius before the guard
//! decides (`guard/blast.rs`): two read-only Queries of pgwarden's own on the
//! client's connection, through `Relay::read_catalog` (inside the client's
//! transaction under pgwarden's savepoint, rolled back to on error); their replies
//! never reach the client.

use bytes::BytesMut;

use super::probe::SERVER_GRACE;
use super::{End, Relay};
use crate::session::guard::BlastOrder;

impl Relay {
    /// Reads the blast radius of the simple Query in the first `total` bytes of
    /// `cbuf`, then carries out what the guard decides with it.
    pub(super) async fn blast(
        &mut self,
        mut order: Box<BlastOrder>,
        total: usize,
    ) -> Result<(), End> {
        if !self.wait_idle().await? {
            let why = "the server was still busy with this client's earlier requests";
            let decision = self.guard.after_blast(order, Some(why));
            return self.dispatch(decision, total).await;
        }
        let mut pbuf = BytesMut::new();
        let plan = order.plan.clone();
        let timeout = plan.statement_timeout() + SERVER_GRACE;
        let (sql, sets) = order.first_read();
        let first = self
            .read_catalog(&sql, sets, &plan, &mut pbuf, timeout)
            .await?;
        order.first_done(first);
        if let Some((sql, sets)) = order.count_read() {
            let counts = self
                .read_catalog(&sql, sets, &plan, &mut pbuf, timeout)
                .await?;
            order.count_done(counts);
        }
        self.leftover(pbuf);
        let decision = self.guard.after_blast(order, None);
        self.dispatch(decision, total).await
    }
}
