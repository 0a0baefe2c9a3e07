//! Feature `tracing`: one event per cancellation origin, never one per descendant, with the
//! error, the cause, its location and the context's chain; and `Cause` in an error chain.
//!
//! A tiny recording `Subscriber` (the `tracing` crate's own traits, no `tracing-subscriber`)
//! is the process-wide default of this test binary, since deadline events come from the timer
//! thread. Tests run in parallel, so each tags its contexts with a value type of its own and
//! counts only the events whose `context` chain names that type.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use go_context::{Context, Error, Group};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

// ===== the recording subscriber =====

#[derive(Clone, Debug)]
struct Recorded {
    target: String,
    level: Level,
    fields: BTreeMap<String, String>,
}

impl Recorded {
    fn field(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no field {name} in {self:?}"))
    }
}

struct Store {
    events: Mutex<Vec<Recorded>>,
    added: Condvar,
}

fn store() -> &'static Store {
    static STORE: OnceLock<Store> = OnceLock::new();
    STORE.get_or_init(|| Store {
        events: Mutex::new(Vec::new()),
        added: Condvar::new(),
    })
}

struct Recorder;

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let recorded = Recorded {
            target: event.metadata().target().to_owned(),
            level: *event.metadata().level(),
            fields,
        };
        let s = store();
        s.events.lock().unwrap().push(recorded);
        s.added.notify_all();
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        tracing::subscriber::set_global_default(Recorder).expect("the only global subscriber");
    });
}

/// The events so far whose context chain names `tag` (a value type's short name).
fn events_for(tag: &str) -> Vec<Recorded> {
    let needle = format!("with_value({tag})");
    store()
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.fields.get("context").is_some_and(|c| c.contains(&needle)))
        .cloned()
        .collect()
}

/// Waits (on the recorder's condvar, bounded generously) until `n` events name `tag`.
fn wait_for(tag: &str, n: usize) -> Vec<Recorded> {
    let s = store();
    let limit = Instant::now() + Duration::from_secs(30);
    let mut events = s.events.lock().unwrap();
    loop {
        drop(events);
        let found = events_for(tag);
        if found.len() >= n {
            return found;
        }
        events = s.events.lock().unwrap();
        let left = limit.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out waiting for {n} events on {tag}");
        // A new event may have landed between `events_for` and this lock: bounded wait, then
        // look again.
        events = s
            .added
            .wait_timeout(events, left.min(Duration::from_millis(100)))
            .unwrap()
            .0;
    }
}

fn assert_common(e: &Recorded) {
    assert_eq!(e.target, "go_context");
    assert_eq!(e.level, Level::DEBUG);
    assert_eq!(e.field("message"), "context done");
}

// ===== one event per origin =====

struct HundredChildren;

#[test]
fn cancel_of_a_parent_with_100_children_emits_one_event() {
    install();
    let (parent, cancel) = Context::background()
        .with_value(HundredChildren)
        .with_cancel();
    let mut children = Vec::new();
    for _ in 0..100 {
        let (child, handle) = parent.with_cancel();
        let (grandchild, grand_handle) = child.with_timeout(Duration::from_secs(3600));
        children.push((child, handle, grandchild, grand_handle));
    }
    assert!(events_for("HundredChildren").is_empty());

    let line = line!() + 1;
    cancel.cancel_with_cause("shutting down");
    // Synchronous: the event is out by the time `cancel` returns.
    let events = events_for("HundredChildren");
    assert_eq!(
        events.len(),
        1,
        "one event, not one per descendant: {events:?}"
    );
    let e = &events[0];
    assert_common(e);
    assert_eq!(e.field("origin"), "cancel");
    assert_eq!(e.field("error"), "context canceled");
    assert_eq!(e.field("cause"), "shutting down");
    assert!(
        e.field("cause.location")
            .starts_with(&format!("{}:{line}:", file!())),
        "where cancel was called: {e:?}"
    );
    assert_eq!(
        e.field("context"),
        "background.with_value(HundredChildren).with_cancel"
    );

    // Every descendant is done, and neither a second cancel nor dropping their handles (each
    // a would-be origin, but on a context already done) adds an event.
    assert!(children
        .iter()
        .all(|(c, _, g, _)| c.is_done() && g.is_done()));
    cancel.cancel();
    drop(children);
    drop(cancel);
    assert_eq!(events_for("HundredChildren").len(), 1);
}

struct Deadline;

#[test]
fn a_deadline_firing_emits_one_event_with_deadline_exceeded() {
    install();
    let (ctx, _cancel) = Context::background()
        .with_value(Deadline)
        .with_timeout(Duration::from_millis(20));
    let children: Vec<_> = (0..10).map(|_| ctx.with_cancel()).collect();
    assert_eq!(ctx.wait(), Error::DeadlineExceeded);

    // The timer thread emits it right after the cancellation it made returns.
    let events = wait_for("Deadline", 1);
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_common(e);
    assert_eq!(e.field("origin"), "deadline");
    assert_eq!(e.field("error"), "context deadline exceeded");
    assert_eq!(e.field("cause"), "context deadline exceeded");
    assert!(e.field("cause.location").starts_with(file!()), "{e:?}");
    assert!(
        e.field("context")
            .starts_with("background.with_value(Deadline).with_deadline("),
        "{e:?}"
    );
    drop(children);
    drop(_cancel);
    assert_eq!(events_for("Deadline").len(), 1);
}

struct PastDeadline;

#[test]
fn a_deadline_already_past_emits_one_event() {
    install();
    let parent = Context::background().with_value(PastDeadline);
    let (ctx, cancel) = parent.with_deadline_cause(Instant::now(), "budget spent");
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    let events = events_for("PastDeadline");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].field("origin"), "deadline");
    assert_eq!(events[0].field("cause"), "budget spent");
    drop(cancel);
    assert_eq!(events_for("PastDeadline").len(), 1);
}

struct Dropped;

#[test]
fn dropping_the_last_handle_emits_one_event() {
    install();
    let line = line!() + 1;
    let (ctx, handle) = Context::background().with_value(Dropped).with_cancel();
    let (_child, _child_handle) = ctx.with_cancel();
    let clone = handle.clone();
    drop(handle);
    assert!(!ctx.is_done());
    assert!(events_for("Dropped").is_empty(), "not the last handle yet");
    drop(clone);
    let events = events_for("Dropped");
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_common(e);
    assert_eq!(e.field("origin"), "handle_dropped");
    assert_eq!(e.field("error"), "context canceled");
    assert!(
        e.field("cause.location")
            .starts_with(&format!("{}:{line}:", file!())),
        "where the context was made: {e:?}"
    );
    assert_eq!(
        e.field("context"),
        "background.with_value(Dropped).with_cancel"
    );
}

struct MemberFails;

#[test]
fn a_failing_group_member_emits_one_event() {
    install();
    let parent = Context::background().with_value(MemberFails);
    let group: Group<String> = Group::new(&parent);
    for _ in 0..5 {
        group.spawn_blocking(|ctx| {
            ctx.wait();
            Ok(())
        });
    }
    group.spawn_blocking(|_| Err::<(), _>("disk full".to_owned()));
    assert_eq!(group.wait(), Err("disk full".to_owned()));
    let events = events_for("MemberFails");
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e.field("origin"), "member_failed");
    assert!(e.field("cause").contains("disk full"), "{e:?}");
}

struct NeverDone;

#[test]
fn a_context_that_ends_unused_by_cancel_emits_nothing_more() {
    install();
    let ctx = Context::background().with_value(NeverDone);
    let (child, cancel) = ctx.with_timeout(Duration::from_secs(3600));
    assert!(!child.is_done());
    assert!(events_for("NeverDone").is_empty());
    cancel.cancel();
    assert_eq!(events_for("NeverDone").len(), 1);
    assert_eq!(events_for("NeverDone")[0].field("origin"), "cancel");
}

// ===== Cause in an error chain =====

/// Every message of the chain from `e`, as a chain printer (anyhow, eyre, tracing's
/// `error.sources`) shows them.
fn chain(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut next = e.source();
    while let Some(s) = next {
        out.push(s.to_string());
        next = s.source();
    }
    out
}

#[derive(Debug)]
struct Upstream(std::io::Error);

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("upstream failed")
    }
}

impl std::error::Error for Upstream {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[test]
fn a_cause_prints_each_message_of_its_chain_once() {
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel_with_cause("quota exceeded");
    let cause = ctx.cause().unwrap();
    assert_eq!(chain(&cause), ["quota exceeded"]);

    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel_with_cause(Upstream(std::io::Error::other("connection reset")));
    let cause = ctx.cause().unwrap();
    assert_eq!(chain(&cause), ["upstream failed", "connection reset"]);
    // The held error is still reachable, by type.
    assert!(cause.downcast_ref::<Upstream>().is_some());

    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    assert_eq!(chain(&ctx.cause().unwrap()), ["context canceled"]);

    let (ctx, _cancel) = Context::background().with_deadline(Instant::now());
    assert_eq!(chain(&ctx.cause().unwrap()), ["context deadline exceeded"]);
}

struct Bridged;

#[test]
fn a_bridged_token_emits_one_event_as_its_origin() {
    install();
    let token = tokio_util::sync::CancellationToken::new();
    let (ctx, _cancel) = Context::background().with_value(Bridged).with_token(&token);
    let _children: Vec<_> = (0..10).map(|_| ctx.with_cancel()).collect();
    token.cancel();
    let events = events_for("Bridged");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].field("origin"), "token");
    assert_eq!(
        events[0].field("cause"),
        "the CancellationToken was cancelled"
    );
}

/// A cause whose `Display` panics: the subscriber formats it for the event.
#[derive(Debug)]
struct DisplayPanics;

impl fmt::Display for DisplayPanics {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("deliberate panic: a cause's Display");
    }
}

impl std::error::Error for DisplayPanics {}

struct BornDoneTag;

/// Regression test: a child born done (its deadline already passed) is cancelled after it is
/// linked under its parent and before its handle exists. A panic in the event (a cause's
/// `Display`, or the subscriber) used to unwind from there: the node was freed while its
/// parent still listed it, and the parent's cancellation then reached whatever took its
/// memory. Only a `cancel()` call re-raises such a panic now.
#[test]
fn a_panicking_cause_display_in_the_event_of_a_born_done_child_unwinds_nothing() {
    install();
    let (parent, cancel) = Context::background().with_value(BornDoneTag).with_cancel();
    let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let (child, _handle) = parent.with_deadline_cause(Instant::now(), DisplayPanics);
        child.err()
    }));
    assert_eq!(
        made.ok(),
        Some(Some(Error::DeadlineExceeded)),
        "with_deadline_cause unwound"
    );
    let unrelated: Vec<_> = (0..64)
        .map(|_| Context::background().with_cancel())
        .collect();
    cancel.cancel();
    let hit = unrelated.iter().filter(|(c, _)| c.is_done()).count();
    assert_eq!(
        hit, 0,
        "the parent's cancellation reached {hit} unrelated context(s)"
    );
    // The parent's own event is still recorded.
    assert!(wait_for("BornDoneTag", 1)
        .iter()
        .any(|e| e.field("origin") == "cancel"));
}
