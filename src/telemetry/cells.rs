//! Counters and histograms that every thread updates in memory of its own, summed when
//! `/metrics` is scraped.
//!
//! The `prometheus` crate's metrics are shared atomics: every request's handful of updates
//! (its operation, its HTTP response, each statement, each connection it acquired) wrote
//! cache lines that both worker threads write, and moving them between cores cost the
//! smallest queries several percent of their throughput, although it added less than 1% of
//! their instructions. Here each thread writes its own cache line (`thread_local`'s
//! per-object storage, already in the dependency tree), and only a scrape reads them all.
//! The exposition is still written by the `prometheus` crate's text encoder.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use prometheus::proto;
use thread_local::ThreadLocal;

/// A value on cache lines of its own.
#[repr(align(128))]
#[derive(Default)]
struct Line<T>(T);

/// Adds `n` to a cell only its own thread writes (a load and a store: no locked
/// instruction; other threads only read it).
fn add(cell: &AtomicU64, n: u64) {
    cell.store(
        cell.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

/// A counter: each thread counts in its own cell.
#[derive(Default)]
pub struct Counter(ThreadLocal<Line<AtomicU64>>);

impl Counter {
    /// Counts one.
    pub fn inc(&self) {
        add(&self.0.get_or_default().0, 1);
    }

    /// The total over all threads.
    pub fn get(&self) -> u64 {
        self.0
            .iter()
            .map(|cell| cell.0.load(Ordering::Relaxed))
            .sum()
    }
}

/// The most buckets a histogram may have (its bounds, and one above the last).
const MAX_BUCKETS: usize = 16;

/// One thread's observations: a count per bucket and the sum (an `f64`'s bits).
#[derive(Default)]
struct Cells {
    buckets: [AtomicU64; MAX_BUCKETS],
    sum: AtomicU64,
}

/// A histogram with fixed bucket bounds: each thread counts in its own cells.
pub struct Histogram {
    bounds: &'static [f64],
    cells: ThreadLocal<Line<Cells>>,
}

impl Histogram {
    /// A histogram with buckets up to each of `bounds` (ascending; fewer than 16).
    pub fn new(bounds: &'static [f64]) -> Self {
        assert!(bounds.len() < MAX_BUCKETS, "at most 15 bucket bounds");
        Histogram {
            bounds,
            cells: ThreadLocal::new(),
        }
    }

    /// Observes `value`.
    pub fn observe(&self, value: f64) {
        let cells = &self.cells.get_or_default().0;
        let bucket = self.bounds.partition_point(|bound| *bound < value);
        add(&cells.buckets[bucket], 1);
        let sum = f64::from_bits(cells.sum.load(Ordering::Relaxed)) + value;
        cells.sum.store(sum.to_bits(), Ordering::Relaxed);
    }

    /// How many values were observed (over all threads).
    pub fn count(&self) -> u64 {
        self.cells
            .iter()
            .flat_map(|cells| &cells.0.buckets)
            .map(|bucket| bucket.load(Ordering::Relaxed))
            .sum()
    }

    /// As a Prometheus histogram. Its count is the sum of its buckets, read once, so that
    /// the `+Inf` bucket and `_count` always agree.
    fn proto(&self) -> proto::Histogram {
        let mut counts = [0u64; MAX_BUCKETS];
        let mut sum = 0.0;
        for cells in self.cells.iter() {
            for (total, bucket) in counts.iter_mut().zip(&cells.0.buckets) {
                *total += bucket.load(Ordering::Relaxed);
            }
            sum += f64::from_bits(cells.0.sum.load(Ordering::Relaxed));
        }
        let mut cumulative = 0;
        let buckets = self
            .bounds
            .iter()
            .zip(counts)
            .map(|(bound, count)| {
                cumulative += count;
                let mut bucket = proto::Bucket::default();
                bucket.set_upper_bound(*bound);
                bucket.set_cumulative_count(cumulative);
                bucket
            })
            .collect();
        let mut histogram = proto::Histogram::default();
        histogram.set_bucket(buckets);
        histogram.set_sample_count(counts.iter().sum());
        histogram.set_sample_sum(sum);
        histogram
    }
}

/// Series by key (their label values), made when first used. A thread finds a series it
/// has used before in its own map, without a lock.
pub struct Series<K: Send, V: Send + Sync> {
    all: RwLock<HashMap<K, Arc<V>>>,
    seen: ThreadLocal<RefCell<HashMap<K, Arc<V>>>>,
    make: fn() -> V,
}

impl<K: Hash + Eq + Clone + Send, V: Send + Sync> Series<K, V> {
    /// No series yet; `make` makes one.
    pub fn new(make: fn() -> V) -> Self {
        Series {
            all: RwLock::default(),
            seen: ThreadLocal::new(),
            make,
        }
    }

    /// Runs `update` on the series of `key`, made if there are fewer than `limit`; `false`
    /// (and nothing run) when there is none and there may be no more.
    pub fn with<Q>(&self, key: &Q, limit: usize, update: impl FnOnce(&V)) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let mut seen = self.seen.get_or_default().borrow_mut();
        if let Some(series) = seen.get(key) {
            update(series);
            return true;
        }
        let found = {
            let all = read(&self.all);
            match all.get(key) {
                Some(series) => Some(series.clone()),
                // Once every series is taken, a new key costs the read lock only.
                None if all.len() >= limit => return false,
                None => None,
            }
        };
        let series = match found {
            Some(series) => series,
            None => {
                let mut all = self.all.write().unwrap_or_else(|e| e.into_inner());
                if let Some(series) = all.get(key) {
                    series.clone()
                } else if all.len() < limit {
                    let series = Arc::new((self.make)());
                    all.insert(key.to_owned(), series.clone());
                    series
                } else {
                    return false;
                }
            }
        };
        update(&series);
        seen.insert(key.to_owned(), series);
        true
    }

    /// Each series with its key, in key order.
    fn each(&self) -> Vec<(K, Arc<V>)>
    where
        K: Ord,
    {
        let mut all: Vec<_> = read(&self.all)
            .iter()
            .map(|(key, series)| (key.clone(), series.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// How many series there are.
    #[cfg(test)]
    fn len(&self) -> usize {
        read(&self.all).len()
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

/// A metric family being written for a scrape.
pub struct Family(proto::MetricFamily);

impl Family {
    /// A counter family.
    pub fn counters(name: &str, help: &str) -> Self {
        Self::of(name, help, proto::MetricType::COUNTER)
    }

    /// A histogram family.
    pub fn histograms(name: &str, help: &str) -> Self {
        Self::of(name, help, proto::MetricType::HISTOGRAM)
    }

    fn of(name: &str, help: &str, kind: proto::MetricType) -> Self {
        let mut family = proto::MetricFamily::default();
        family.set_name(name.to_owned());
        family.set_help(help.to_owned());
        family.set_field_type(kind);
        Family(family)
    }

    fn push(&mut self, labels: &[(&str, &str)], mut metric: proto::Metric) {
        metric.set_label(
            labels
                .iter()
                .map(|(name, value)| {
                    let mut pair = proto::LabelPair::default();
                    pair.set_name((*name).to_owned());
                    pair.set_value((*value).to_owned());
                    pair
                })
                .collect(),
        );
        self.0.mut_metric().push(metric);
    }

    /// Adds a counter of `value` with `labels`.
    pub fn counter(&mut self, labels: &[(&str, &str)], value: u64) {
        let mut counter = proto::Counter::default();
        counter.set_value(value as f64);
        let mut metric = proto::Metric::default();
        metric.set_counter(counter);
        self.push(labels, metric);
    }

    /// Adds `histogram` with `labels`.
    pub fn histogram(&mut self, labels: &[(&str, &str)], histogram: &Histogram) {
        let mut metric = proto::Metric::default();
        metric.set_histogram(histogram.proto());
        self.push(labels, metric);
    }

    /// Adds a series for each of `series`: `write` adds each key's metrics.
    pub fn each<K, V>(
        mut self,
        series: &Series<K, V>,
        mut write: impl FnMut(&mut Family, &K, &V),
    ) -> Self
    where
        K: Hash + Ord + Clone + Send,
        V: Send + Sync,
    {
        for (key, value) in series.each() {
            write(&mut self, &key, &value);
        }
        self
    }

    /// The family, as the encoder takes it.
    pub fn done(self) -> proto::MetricFamily {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_add_up() {
        static BOUNDS: [f64; 3] = [1.0, 2.0, 5.0];
        let counter = Counter::default();
        let histogram = Histogram::new(&BOUNDS);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for value in [0.5, 1.0, 1.5, 4.0, 9.0] {
                        counter.inc();
                        histogram.observe(value);
                    }
                });
            }
        });
        assert_eq!(counter.get(), 20);
        assert_eq!(histogram.count(), 20);
        let proto = histogram.proto();
        let cumulative: Vec<u64> = proto
            .get_bucket()
            .iter()
            .map(|b| b.cumulative_count())
            .collect();
        assert_eq!(cumulative, [8, 12, 16]);
        assert_eq!(proto.get_sample_count(), 20);
        assert_eq!(proto.get_sample_sum(), 4.0 * 16.0);
    }

    #[test]
    fn series_are_bounded() {
        let series: Series<String, Counter> = Series::new(Counter::default);
        assert!(series.with("a", 2, Counter::inc));
        assert!(series.with("b", 2, Counter::inc));
        assert!(!series.with("c", 2, Counter::inc));
        std::thread::scope(|scope| {
            scope.spawn(|| assert!(series.with("a", 2, Counter::inc)));
        });
        assert_eq!(series.len(), 2);
        let family = Family::counters("x_total", "x").each(&series, |family, key, c| {
            family.counter(&[("k", key)], c.get());
        });
        let values: Vec<f64> = family
            .done()
            .get_metric()
            .iter()
            .map(|m| m.get_counter().get_value())
            .collect();
        assert_eq!(values, [2.0, 1.0]);
    }
}
