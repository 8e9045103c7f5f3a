//! Watch events as the jobs want them: a whole (re)list at once, then single changes.
//!
//! kube's `watcher` reports a list as `Init`, one `InitApply` per object and `InitDone`. The
//! jobs must not act on half a list (a partial list would look like deletions), so every
//! watch goes through [`relisted`], which buffers the list's *views* (the compact form a job
//! keeps, never the whole objects) and hands them over as one [`Change::Listed`].
//!
//! ```text
//!   watcher ─Init, InitApply×n, InitDone─▶ Relist::feed ─▶ Listed(views)
//!           ─Apply / Delete──────────────▶              ─▶ Applied / Deleted (the object)
//! ```

use futures::{Stream, StreamExt};
use kube::runtime::watcher;

/// One watch event as a job consumes it.
#[derive(Debug, PartialEq)]
pub enum Change<K, V> {
    /// A complete (re)list: the views of every object that has one.
    Listed(Vec<V>),
    /// An object was created or changed.
    Applied(K),
    /// An object was deleted.
    Deleted(K),
}

/// The pure core of [`relisted`]: buffers a list in progress.
pub struct Relist<V> {
    buffer: Option<Vec<V>>,
}

impl<V> Default for Relist<V> {
    fn default() -> Self {
        Relist { buffer: None }
    }
}

impl<V> Relist<V> {
    /// Takes one event; returns a change once there is one to act on. `view` turns a listed
    /// object into what is buffered (`None` leaves it out).
    pub fn feed<K>(
        &mut self,
        event: watcher::Event<K>,
        view: impl FnOnce(K) -> Option<V>,
    ) -> Option<Change<K, V>> {
        match event {
            // Every list attempt starts with `Init`: a list that failed half way is dropped.
            watcher::Event::Init => {
                self.buffer = Some(Vec::new());
                None
            }
            watcher::Event::InitApply(object) => {
                self.buffer
                    .get_or_insert_with(Vec::new)
                    .extend(view(object));
                None
            }
            watcher::Event::InitDone => {
                Some(Change::Listed(self.buffer.take().unwrap_or_default()))
            }
            watcher::Event::Apply(object) => Some(Change::Applied(object)),
            watcher::Event::Delete(object) => Some(Change::Deleted(object)),
        }
    }
}

/// `events` with each (re)list delivered whole, as the views `view` makes. Errors pass
/// through unchanged (the watcher retries on its own).
pub fn relisted<K, V, E>(
    events: impl Stream<Item = Result<watcher::Event<K>, E>>,
    mut view: impl FnMut(K) -> Option<V>,
) -> impl Stream<Item = Result<Change<K, V>, E>> {
    let mut relist = Relist::default();
    events.filter_map(move |event| {
        let change = match event {
            Ok(event) => relist.feed(event, &mut view).map(Ok),
            Err(error) => Some(Err(error)),
        };
        std::future::ready(change)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(events: Vec<watcher::Event<u32>>) -> Vec<Change<u32, String>> {
        let mut relist = Relist::default();
        // Odd numbers have no view, as a Service that is not a LoadBalancer has none.
        let view = |n: u32| n.is_multiple_of(2).then(|| format!("v{n}"));
        events
            .into_iter()
            .filter_map(|event| relist.feed(event, view))
            .collect()
    }

    #[test]
    fn a_list_arrives_whole_with_only_the_objects_that_have_a_view() {
        use watcher::Event::*;
        let changes = feed_all(vec![
            Init,
            InitApply(2),
            InitApply(3),
            InitApply(4),
            InitDone,
        ]);
        assert_eq!(
            changes,
            vec![Change::Listed(vec!["v2".to_string(), "v4".to_string()])]
        );
    }

    #[test]
    fn a_list_that_restarts_forgets_its_first_half() {
        use watcher::Event::*;
        let changes = feed_all(vec![Init, InitApply(2), Init, InitApply(4), InitDone]);
        assert_eq!(changes, vec![Change::Listed(vec!["v4".to_string()])]);
    }

    #[test]
    fn changes_pass_through_as_objects_and_an_empty_list_is_a_list() {
        use watcher::Event::*;
        let changes = feed_all(vec![Init, InitDone, Apply(3), Delete(8)]);
        assert_eq!(
            changes,
            vec![
                Change::Listed(Vec::new()),
                Change::Applied(3),
                Change::Deleted(8)
            ]
        );
    }
}
