//! Dedicated threads for password hashing, scheduled below everything else.
//!
//! An Argon2id verify keeps a core busy for tens of milliseconds. On Tokio's shared
//! blocking pool, at normal priority, a sign-in's short steps (the database reads and
//! writes around the hash, the token signature, the HTTP response) and every other
//! request (refreshes, JWKS) wait behind a running hash for the scheduler's time slice.
//! Hashing on its own threads at a higher nice value lets those steps preempt a hash the
//! moment they are runnable; the hashes still get every cycle nothing else wants. See
//! ADR 17.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send>;

/// How long one job waited in the queue for a thread, and how long it then ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobTiming {
    /// From being queued to a thread taking it.
    pub waited: Duration,
    /// The work itself, on the hashing thread.
    pub ran: Duration,
}

/// Told each finished job's [`JobTiming`], on the hashing thread (so it must be cheap):
/// how the server exports the queue's wait and the hashes' run time as metrics.
pub type TimingObserver = Arc<dyn Fn(JobTiming) + Send + Sync>;

/// A fixed set of hashing threads fed from one queue. Dropping the last handle lets
/// the threads finish the queue and exit.
pub struct HashThreads {
    jobs: Mutex<mpsc::Sender<Job>>,
    observer: Option<TimingObserver>,
}

impl std::fmt::Debug for HashThreads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashThreads").field("observed", &self.observer.is_some()).finish_non_exhaustive()
    }
}

/// The hashing threads are gone (a job panicked, or the pool shut down).
#[derive(Debug, thiserror::Error)]
#[error("the password hashing threads did not answer")]
pub struct HashThreadsGone;

impl HashThreads {
    /// Starts `threads` threads (at least one), each `nice` steps below the priority of
    /// the thread that starts them (0 keeps it; the nice value stops at 19). Lowering is best effort: where the platform refuses or lacks
    /// it, hashing still runs, at normal priority. `observer`, if any, is told every
    /// job's timing.
    pub fn start(threads: usize, nice: i32, observer: Option<TimingObserver>) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..threads.max(1) {
            let receiver = receiver.clone();
            std::thread::Builder::new().name(format!("gatehouse-hash-{index}")).spawn(move || {
                lower_priority(nice);
                loop {
                    // One thread waits on the queue at a time; the others wait for the lock.
                    let next = receiver.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok(job) = next else { return };
                    // A panicking job loses its answer (its caller sees `HashThreadsGone`),
                    // not the thread.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                }
            })?;
        }
        Ok(Self { jobs: Mutex::new(sender), observer })
    }

    /// Runs `work` on a hashing thread and waits for its result. Work whose caller has
    /// stopped waiting (a dropped request) by the time a thread takes it is skipped.
    pub async fn run<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, HashThreadsGone> {
        let (answer, result) = tokio::sync::oneshot::channel();
        let (queued, observer) = (Instant::now(), self.observer.clone());
        let job: Job = Box::new(move || {
            if !answer.is_closed() {
                let started = Instant::now();
                let output = work();
                if let Some(observe) = observer {
                    observe(JobTiming { waited: started - queued, ran: started.elapsed() });
                }
                let _ = answer.send(output);
            }
        });
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner).send(job).map_err(|_| HashThreadsGone)?;
        result.await.map_err(|_| HashThreadsGone)
    }
}

/// Raises the calling thread's nice value (Linux schedules threads individually, and
/// `setpriority` on a thread id changes that thread alone).
#[cfg(target_os = "linux")]
fn lower_priority(nice: i32) {
    if nice <= 0 {
        return;
    }
    let thread = Some(rustix::thread::gettid());
    let lowered = rustix::process::getpriority_process(thread)
        .and_then(|current| rustix::process::setpriority_process(thread, (current + nice).min(19)));
    if lowered.is_err() {
        tracing::warn!(nice, "could not lower the priority of a password hashing thread");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_nice: i32) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    fn own_nice() -> i32 {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap_or(i32::MIN)
    }

    #[tokio::test]
    async fn work_runs_on_the_lowered_threads_and_answers() {
        let threads = HashThreads::start(2, 7, None).unwrap();
        let name = threads.run(|| std::thread::current().name().map(str::to_owned)).await.unwrap();
        assert!(name.unwrap().starts_with("gatehouse-hash-"));
        #[cfg(target_os = "linux")]
        {
            let before = own_nice();
            let on_pool = threads.run(own_nice).await.unwrap();
            assert_eq!(on_pool, (before + 7).min(19), "the hashing thread runs at a higher nice value");
            assert_eq!(own_nice(), before, "the caller's priority is untouched");
        }
    }

    #[tokio::test]
    async fn a_panicking_job_fails_its_caller_and_spares_the_thread() {
        let threads = HashThreads::start(1, 0, None).unwrap();
        assert!(threads.run(|| panic!("boom")).await.is_err());
        assert_eq!(threads.run(|| 41 + 1).await.unwrap(), 42, "the only thread still serves");
    }

    #[tokio::test]
    async fn queued_work_runs_one_per_thread_at_a_time() {
        let threads = Arc::new(HashThreads::start(2, 0, None).unwrap());
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (threads, running, most) = (threads.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    threads
                        .run(move || {
                            use std::sync::atomic::Ordering::SeqCst;
                            let now = running.fetch_add(1, SeqCst) + 1;
                            most.fetch_max(now, SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(20));
                            running.fetch_sub(1, SeqCst);
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 2, "never more hashes than threads");
    }

    #[tokio::test]
    async fn the_observer_sees_each_jobs_wait_and_run_time() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let observer: TimingObserver = Arc::new(move |t| record.lock().unwrap().push(t));
        let threads = Arc::new(HashThreads::start(1, 0, Some(observer)).unwrap());
        // Two 30 ms jobs on one thread: the second waits for the first.
        let job = || std::thread::sleep(Duration::from_millis(30));
        let (first, second) = tokio::join!(threads.run(job), threads.run(job));
        first.unwrap();
        second.unwrap();
        let mut timings = seen.lock().unwrap().clone();
        assert_eq!(timings.len(), 2, "one timing per job");
        timings.sort_by_key(|t| t.waited);
        assert!(timings.iter().all(|t| t.ran >= Duration::from_millis(30)), "{timings:?}");
        assert!(timings[1].waited >= Duration::from_millis(25), "the queued job waited: {timings:?}");
    }
}
