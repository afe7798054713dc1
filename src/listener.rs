//! Listeners of the request event, and the registry they attach to.
//!
//! The registry is read on every request without taking a lock: the listener list is
//! an immutable snapshot behind an [`ArcSwap`], replaced whole when a listener is added
//! or removed. Adding and removing is therefore safe while a test runs. A virtual user
//! fires through its own [`ListenerCache`], which keeps the snapshot it last saw and
//! checks with one relaxed load that it is still current.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::{ArcSwap, Cache};

use crate::event::{EventDetail, RequestEvent, TraceIds};

/// Something that consumes request events: statistics, a metric sink, a user's own hook.
///
/// `on_request` runs on the request path of whichever worker thread completed the
/// request. It must not block; a sink that does I/O hands the event to a bounded buffer
/// and returns.
pub trait RequestListener: Send + Sync + 'static {
    /// Called once for every completed request.
    fn on_request(&self, event: &RequestEvent<'_>);

    /// Called instead of [`RequestListener::on_request`] for a request whose trace
    /// context the engine chose before sending it (while a listener claims it:
    /// [`EventDetail::want_trace`]). By default the context is ignored.
    fn on_traced_request(&self, event: &RequestEvent<'_>, trace: TraceIds) {
        let _ = trace;
        self.on_request(event);
    }
}

/// Identifies an attached listener, for [`ListenerRegistry::remove`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerId(u64);

type Snapshot = Vec<(ListenerId, Arc<dyn RequestListener>)>;

/// The set of listeners attached to one request event (Locust's `events.request`):
/// each run's context holds its own.
pub struct ListenerRegistry {
    listeners: Arc<ArcSwap<Snapshot>>,
    next_id: AtomicU64,
    detail: Arc<EventDetail>,
}

impl Default for ListenerRegistry {
    fn default() -> Self {
        Self {
            listeners: Arc::new(ArcSwap::from_pointee(Vec::new())),
            next_id: AtomicU64::new(1),
            detail: Arc::default(),
        }
    }
}

impl std::fmt::Debug for ListenerRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerRegistry")
            .field("listeners", &self.len())
            .finish()
    }
}

impl ListenerRegistry {
    /// Attaches a listener; it sees every request completed from now on.
    pub fn add(&self, listener: Arc<dyn RequestListener>) -> ListenerId {
        let id = ListenerId(self.next_id.fetch_add(1, Ordering::Relaxed));
        self.listeners.rcu(|current| {
            let mut next = Snapshot::clone(current);
            next.push((id, listener.clone()));
            next
        });
        id
    }

    /// Detaches a listener. Returns false when it was not attached.
    pub fn remove(&self, id: ListenerId) -> bool {
        let mut found = false;
        self.listeners.rcu(|current| {
            found = current.iter().any(|(i, _)| *i == id);
            current
                .iter()
                .filter(|(i, _)| *i != id)
                .cloned()
                .collect::<Snapshot>()
        });
        found
    }

    /// What the attached listeners want in the events beyond the basics (URLs, response
    /// samples); the engine reads it before each request.
    pub fn detail(&self) -> &Arc<EventDetail> {
        &self.detail
    }

    /// Number of attached listeners.
    pub fn len(&self) -> usize {
        self.listeners.load().len()
    }

    /// True when no listener is attached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A cache to fire through from one task, e.g. a virtual user's.
    pub fn cache(&self) -> ListenerCache {
        ListenerCache(Cache::new(self.listeners.clone()))
    }

    /// Delivers one event to every attached listener. Lock-free.
    #[inline]
    pub fn fire(&self, event: &RequestEvent<'_>) {
        let listeners = self.listeners.load();
        for (_, listener) in listeners.iter() {
            listener.on_request(event);
        }
    }
}

/// One task's view of a [`ListenerRegistry`]: the snapshot of listeners it last saw.
///
/// Firing through it reads the registry with one relaxed load while the listener set
/// is unchanged, where [`ListenerRegistry::fire`] pays `ArcSwap::load`'s fenced store
/// on every event. A listener added or removed is seen at the next fire. The kept
/// snapshot holds the listeners it names until then, or until the cache is dropped.
pub struct ListenerCache(Cache<Arc<ArcSwap<Snapshot>>, Arc<Snapshot>>);

impl std::fmt::Debug for ListenerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerCache").finish_non_exhaustive()
    }
}

impl ListenerCache {
    /// Delivers one event to every listener attached now.
    #[inline]
    pub fn fire(&mut self, event: &RequestEvent<'_>) {
        for (_, listener) in self.0.load().iter() {
            listener.on_request(event);
        }
    }

    /// Delivers one event with the trace context chosen for it, when there is one
    /// ([`RequestListener::on_traced_request`]), to every listener attached now.
    #[inline]
    pub fn fire_traced(&mut self, event: &RequestEvent<'_>, trace: Option<TraceIds>) {
        match trace {
            None => self.fire(event),
            Some(trace) => {
                for (_, listener) in self.0.load().iter() {
                    listener.on_traced_request(event, trace);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Endpoint, EndpointInterner, Outcome};
    use std::sync::atomic::AtomicUsize;
    use std::time::{Duration, SystemTime};

    struct Counter(AtomicUsize);
    impl RequestListener for Counter {
        fn on_request(&self, _event: &RequestEvent<'_>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn event(endpoint: &Endpoint) -> RequestEvent<'_> {
        RequestEvent {
            endpoint,
            start_time: SystemTime::now(),
            response_time: Duration::from_micros(10),
            response_length: 3,
            status: Some(200),
            outcome: Outcome::Success,
            url: None,
            response: None,
            retry: false,
        }
    }

    #[test]
    fn add_fire_remove() {
        let registry = ListenerRegistry::default();
        let interner = EndpointInterner::default();
        let endpoint = interner.intern("GET", "/");
        let event = event(&endpoint);
        let a = Arc::new(Counter(AtomicUsize::new(0)));
        let b = Arc::new(Counter(AtomicUsize::new(0)));
        let ida = registry.add(a.clone());
        registry.fire(&event);
        let idb = registry.add(b.clone());
        registry.fire(&event);
        assert!(registry.remove(ida));
        assert!(!registry.remove(ida));
        registry.fire(&event);
        assert_eq!(a.0.load(Ordering::Relaxed), 2);
        assert_eq!(b.0.load(Ordering::Relaxed), 2);
        assert!(registry.remove(idb));
        assert!(registry.is_empty());
    }

    #[test]
    fn a_cache_sees_every_add_and_remove_at_its_next_fire() {
        let registry = ListenerRegistry::default();
        let interner = EndpointInterner::default();
        let endpoint = interner.intern("GET", "/");
        let event = event(&endpoint);
        let mut cache = registry.cache();
        cache.fire(&event);
        let a = Arc::new(Counter(AtomicUsize::new(0)));
        let id = registry.add(a.clone());
        cache.fire(&event);
        cache.fire(&event);
        assert_eq!(a.0.load(Ordering::Relaxed), 2);
        assert!(registry.remove(id));
        cache.fire(&event);
        assert_eq!(a.0.load(Ordering::Relaxed), 2);
        // The detached listener is released once no cache holds its snapshot.
        assert_eq!(Arc::strong_count(&a), 1);
    }
}
