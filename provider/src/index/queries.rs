//! One shared [`PoolQuery`] per distinct set of labels and pool annotations.
//!
//! Every Service the provider writes carries the label `implementation: kube-vip`, so nearly
//! every view has the same non-empty query. Built per view, each held its own `BTreeMap`
//! node and strings (about 1 KiB per Service, 10 MiB at 10,000). The index swaps each new
//! view's query for the shared one (the allocator's requests hold the same `Arc`), and
//! forgets queries no view holds any more once the table has doubled since the last sweep.
//! The controller does the same for the views of a (re)list it buffers, so a restart with
//! 10,000 Services never holds 10,000 copies either.

use std::{collections::HashSet, sync::Arc};

use crate::pools::PoolQuery;

/// Table size below which no sweep is made.
const SWEEP_FLOOR: usize = 64;

/// The shared queries. See the module documentation.
#[derive(Debug, Default)]
pub struct Queries {
    shared: HashSet<Arc<PoolQuery>>,
    /// Sweep when the table reaches this size.
    sweep_at: usize,
}

impl Queries {
    /// Replaces `query` by the shared equal one, or makes it the shared one.
    pub fn share(&mut self, query: &mut Arc<PoolQuery>) {
        if let Some(known) = self.shared.get(&**query) {
            if !Arc::ptr_eq(known, query) {
                *query = Arc::clone(known);
            }
            return;
        }
        self.shared.insert(Arc::clone(query));
        if self.shared.len() >= self.sweep_at.max(SWEEP_FLOOR) {
            // Held only here: no view or request uses it any more.
            self.shared.retain(|q| Arc::strong_count(q) > 1);
            self.sweep_at = self.shared.len() * 2;
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.shared.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labelled(value: &str) -> Arc<PoolQuery> {
        Arc::new(PoolQuery {
            labels: [("app".to_string(), value.to_string())].into(),
            ..PoolQuery::default()
        })
    }

    #[test]
    fn equal_queries_share_one_allocation() {
        let mut queries = Queries::default();
        let mut first = labelled("web");
        let mut second = labelled("web");
        let mut other = labelled("db");
        queries.share(&mut first);
        queries.share(&mut second);
        queries.share(&mut other);
        assert!(Arc::ptr_eq(&first, &second));
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(queries.len(), 2);
    }

    #[test]
    fn queries_nobody_holds_are_swept_as_the_table_grows() {
        let mut queries = Queries::default();
        let mut kept = labelled("kept");
        queries.share(&mut kept);
        for i in 0..1000 {
            // Shared, then dropped at once: only the table holds it.
            let mut query = labelled(&format!("gone-{i}"));
            queries.share(&mut query);
        }
        assert!(
            queries.len() <= 2 * SWEEP_FLOOR,
            "{} queries kept",
            queries.len()
        );
        let mut again = labelled("kept");
        queries.share(&mut again);
        assert!(Arc::ptr_eq(&kept, &again), "a held query is never swept");
    }
}
