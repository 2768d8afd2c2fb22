//! Tick-based batching for DataLoaders, as JavaScript's dataloader batches per event-loop
//! tick: a batch starts only when the request's executor has run every resolver it can and
//! is waiting, so every key asked for in that round lands in one batch — whatever the number
//! of siblings, and however slow the machine. A timed window (async-graphql's default) splits
//! a level's keys into several batches when resolving the level takes longer than the window.
//!
//! [`Ticked`] wraps a request's execution future; each DataLoader of the request hands its
//! batch futures to the request's [`TickScheduler`] instead of spawning them, and `Ticked`
//! spawns them when the execution future returns `Pending` without having woken itself (a
//! self-wake means it only yielded, with resolvers still runnable). While any released batch
//! is still running, the execution is not polled at all: the request advances level by
//! level, and independent branches of the query (say, members and datasets of the same
//! organizations) meet at each level. So the number of statements depends on the query's
//! shape alone, not on which branch's query the database answered first. (Resolvers hold no
//! database connection while they wait for a batch, so this cannot starve the pool. A
//! query's own connection, [`crate::db::Held`], is locked only by the statement running on
//! it, in a task of its own, never by a resolver that is not being polled.)

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::future::BoxFuture;

/// Holds a request's batch futures until its executor is waiting.
#[derive(Default)]
pub struct TickScheduler {
    queue: Mutex<Vec<BoxFuture<'static, ()>>>,
    in_flight: AtomicUsize,
    executor: Mutex<Option<Waker>>,
}

impl TickScheduler {
    /// A spawner for `DataLoader::new` that queues batches on this scheduler.
    pub fn spawner(self: &Arc<Self>) -> impl Fn(BoxFuture<'static, ()>) + Send + Sync + 'static {
        let scheduler = self.clone();
        move |batch| scheduler.queue.lock().expect("not poisoned").push(batch)
    }

    fn release(self: &Arc<Self>) {
        let batches = std::mem::take(&mut *self.queue.lock().expect("not poisoned"));
        for batch in batches {
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            let scheduler = self.clone();
            tokio::spawn(async move {
                batch.await;
                scheduler.in_flight.fetch_sub(1, Ordering::SeqCst);
                // The batch's answers woke their waiters, possibly before the count went
                // down; wake the executor once more so it sees the count and releases what
                // is queued.
                let executor = scheduler.executor.lock().expect("not poisoned").clone();
                if let Some(executor) = executor {
                    executor.wake();
                }
            });
        }
    }
}

/// A waker that records whether it was woken.
struct Recording {
    woken: AtomicBool,
    inner: Waker,
}

impl Wake for Recording {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.inner.wake_by_ref();
    }
}

/// A request's execution, releasing its loaders' batches at each tick.
pub struct Ticked<F> {
    inner: Pin<Box<F>>,
    scheduler: Arc<TickScheduler>,
}

impl<F: Future> Ticked<F> {
    /// Wraps `inner`, whose loaders spawn through `scheduler`.
    pub fn new(inner: F, scheduler: Arc<TickScheduler>) -> Self {
        Ticked {
            inner: Box::pin(inner),
            scheduler,
        }
    }
}

impl<F: Future> Future for Ticked<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        *self.scheduler.executor.lock().expect("not poisoned") = Some(cx.waker().clone());
        if self.scheduler.in_flight.load(Ordering::SeqCst) > 0 {
            // The last batch to finish wakes us.
            return Poll::Pending;
        }
        let recording = Arc::new(Recording {
            woken: AtomicBool::new(false),
            inner: cx.waker().clone(),
        });
        let waker = Waker::from(recording.clone());
        let result = self.inner.as_mut().poll(&mut Context::from_waker(&waker));
        if result.is_ready() || !recording.woken.load(Ordering::SeqCst) {
            self.scheduler.release();
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns `Pending` once, waking itself first.
    struct YieldOnce(bool);

    impl Future for YieldOnce {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn batches_wait_for_the_executor_to_be_idle() {
        let scheduler = Arc::new(TickScheduler::default());
        let spawn = scheduler.spawner();
        let ran = Arc::new(AtomicBool::new(false));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let flag = ran.clone();
        let work = async move {
            spawn(Box::pin(async move {
                flag.store(true, Ordering::SeqCst);
                let _ = tx.send(());
            }));
            // Yielding (waking itself, as FuturesUnordered does after a run of polls) is not
            // idleness: the batch must not have been released yet.
            YieldOnce(false).await;
            YieldOnce(false).await;
            let early = ran.load(Ordering::SeqCst);
            rx.await.unwrap();
            early
        };
        let ran_early = Ticked::new(work, scheduler).await;
        assert!(!ran_early);
    }
}
