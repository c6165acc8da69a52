//! Posts' rendered HTML, kept in memory so a post is rendered once, not on every view.
//!
//! Rendering a post's Markdown (parse, highlight, sanitise) costs about a millisecond per few
//! kilobytes: a 400 KB tutorial takes a quarter of a second, on every view and in every feed
//! request. The cache is keyed by a SHA-256 of the Markdown itself, not by the post, so it is
//! never stale: an edit is a new key, and the old entry ages out. Each node keeps its own (a
//! replica renders what it reads). It holds at most a configured number of bytes of HTML
//! (`BLOG_RENDER_CACHE_MB`, 0 turns it off), evicting what is least used ([`quick_cache`]'s
//! CLOCK-Pro); concurrent views of a post not yet rendered wait for one render instead of each
//! rendering it, and at most one render per core runs at once. A view waits (for its turn, or
//! for another view's render of the same post) without holding a thread: only a render that has
//! its turn runs, on the blocking pool ([`RenderCache::render_async`]).

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use quick_cache::sync::Cache;
use quick_cache::{OptionsBuilder, Weighter};
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinError;

/// Rendered HTML by the SHA-256 of its Markdown.
pub struct RenderCache {
    cache: Option<Cache<[u8; 32], Arc<str>, HtmlBytes>>,
    hits: AtomicU64,
    misses: AtomicU64,
    /// The turns to render: one permit per render allowed at once. Waited for asynchronously;
    /// never closed.
    turns: Arc<Semaphore>,
    /// Renders running now, each holding a turn (so never more than the turns), and the most
    /// that ran at once.
    rendering: Arc<Mutex<usize>>,
    most_at_once: AtomicUsize,
}

/// An entry weighs its HTML's bytes and its key's.
#[derive(Clone)]
struct HtmlBytes;

impl Weighter<[u8; 32], Arc<str>> for HtmlBytes {
    fn weight(&self, key: &[u8; 32], html: &Arc<str>) -> u64 {
        (key.len() + html.len()) as u64
    }
}

/// A guess at the average entry, to size the cache's table: a post of a few kilobytes.
const TYPICAL_ENTRY_BYTES: u64 = 8 * 1024;

/// A turn to render, given back when dropped, however the render ends (a panic included, or on
/// the blocking pool after the view that asked for it went away: the render runs to its end
/// there, and its turn is given back then).
struct Turn {
    rendering: Arc<Mutex<usize>>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Turn {
    fn drop(&mut self) {
        // Before the permit (dropped after this): the count never passes the turns.
        *self.rendering.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
    }
}

impl RenderCache {
    /// A cache of at most `bytes` of HTML; 0: none, every view renders.
    pub fn new(bytes: u64) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_renders_at_once(bytes, cores)
    }

    /// [`RenderCache::new`], rendering at most `renders` posts at once.
    pub fn with_renders_at_once(bytes: u64, renders: usize) -> Self {
        let cache = (bytes > 0).then(|| {
            let items = (bytes / TYPICAL_ENTRY_BYTES).clamp(16, 1 << 20) as usize;
            // One shard: a shard holds only its share of the bytes and refuses an entry bigger
            // than that, and the big posts are the ones worth keeping. A blog's views do not
            // need the concurrency of more (a hit holds the lock for a lookup, never a render).
            let options = OptionsBuilder::new()
                .shards(1)
                .estimated_items_capacity(items)
                .weight_capacity(bytes)
                .build()
                .expect("the options are complete");
            Cache::with_options(options, HtmlBytes, Default::default(), Default::default())
        });
        RenderCache {
            cache,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            turns: Arc::new(Semaphore::new(renders.clamp(1, Semaphore::MAX_PERMITS))),
            rendering: Arc::new(Mutex::new(0)),
            most_at_once: AtomicUsize::new(0),
        }
    }

    /// The sanitised HTML of `markdown`, rendered now or earlier, for a view on the runtime. It
    /// waits for another view's render of the same Markdown, and for a turn to render, without
    /// holding a thread; only the render itself, once it has its turn, runs on the blocking
    /// pool, so that however long a post takes to render, the runtime's threads go on serving
    /// other requests. An error only if the render panicked.
    ///
    /// Dropped (the request went away) while waiting, nothing is held: the post's placeholder
    /// goes to the next view waiting for it, which renders it. Dropped while rendering, the
    /// render ends on the blocking pool and gives its turn back; the placeholder goes on as
    /// above.
    pub async fn render_async(&self, markdown: String) -> Result<Arc<str>, JoinError> {
        let Some(cache) = &self.cache else {
            let html = self.render_on_the_pool(markdown).await?;
            self.count(false);
            return Ok(html);
        };
        let key: [u8; 32] = Sha256::digest(markdown.as_bytes()).into();
        match cache.get_value_or_guard_async(&key).await {
            Ok(html) => {
                self.count(true);
                Ok(html)
            }
            Err(placeholder) => {
                // A render that fails drops the placeholder unfilled, as a view that went away.
                let html = self.render_on_the_pool(markdown).await?;
                // Refused only if the placeholder was taken out meanwhile: the HTML is still
                // this view's.
                let _ = placeholder.insert(html.clone());
                self.count(false);
                Ok(html)
            }
        }
    }

    /// Renders `markdown` on the blocking pool once it has a turn, waited for here.
    async fn render_on_the_pool(&self, markdown: String) -> Result<Arc<str>, JoinError> {
        let turn = self.turn().await;
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            Arc::<str>::from(super::markdown::render(&markdown))
        })
        .await
    }

    /// The sanitised HTML of `markdown`, rendered now or earlier, on this thread: blocking (it
    /// waits here for another render of the same Markdown and for a turn), for a thread of its
    /// own. A view on the runtime uses [`RenderCache::render_async`].
    pub fn render(&self, markdown: &str) -> Arc<str> {
        let render_here = || {
            let _turn = block_on(self.turn());
            Arc::<str>::from(super::markdown::render(markdown))
        };
        let Some(cache) = &self.cache else {
            self.count(false);
            return render_here();
        };
        let key: [u8; 32] = Sha256::digest(markdown.as_bytes()).into();
        let mut rendered_here = false;
        let html = cache
            .get_or_insert_with(&key, || {
                rendered_here = true;
                Ok::<_, Infallible>(render_here())
            })
            .unwrap_or_else(|never| match never {});
        self.count(!rendered_here);
        html
    }

    /// A turn to render, once fewer than the turns' renders run: a burst of views of posts not
    /// rendered yet waits its turn rather than taking every core from the rest of the server.
    /// Waiting holds no thread (but in [`RenderCache::render`], which blocks its own).
    async fn turn(&self) -> Turn {
        let permit = self
            .turns
            .clone()
            .acquire_owned()
            .await
            .expect("the turns are never closed");
        // Kept right also once the lock is poisoned: each change is one step under the lock.
        let mut running = self.rendering.lock().unwrap_or_else(|e| e.into_inner());
        *running += 1;
        self.most_at_once.fetch_max(*running, Ordering::Relaxed);
        drop(running);
        Turn {
            rendering: self.rendering.clone(),
            _permit: permit,
        }
    }

    /// Views served from the cache, and views that rendered.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    fn count(&self, hit: bool) {
        let (counter, name) = if hit {
            (&self.hits, "blog_render_cache_hits_total")
        } else {
            (&self.misses, "blog_render_cache_misses_total")
        };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(name).increment(1);
    }
}

/// Runs `future` to its end on this thread, parked while it waits: for [`RenderCache::render`]'s
/// turn, off the runtime (the turns are a runtime-independent semaphore).
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_renders_once_and_an_edit_renders_again() {
        let cache = RenderCache::new(1 << 20);
        let first = cache.render("Hello *world*");
        assert_eq!(&*first, super::super::markdown::render("Hello *world*"));
        assert_eq!(cache.counts(), (0, 1));
        assert!(Arc::ptr_eq(&first, &cache.render("Hello *world*")));
        assert_eq!(cache.counts(), (1, 1));
        let edited = cache.render("Hello *there*");
        assert!(edited.contains("<em>there</em>"), "{edited}");
        assert_eq!(cache.counts(), (1, 2));
    }

    #[test]
    fn the_cache_holds_at_most_its_bytes() {
        let cache = RenderCache::new(64 * 1024);
        let body = |i: usize| format!("post {i}\n\n{}", "words and more words ".repeat(200));
        for i in 0..200 {
            cache.render(&body(i));
        }
        let held = cache.cache.as_ref().unwrap();
        assert!(held.weight() <= 64 * 1024, "{} bytes held", held.weight());
        assert!(held.len() < 200, "{} entries held", held.len());
        // What was rendered last is still there.
        let (hits, _) = cache.counts();
        cache.render(&body(199));
        assert_eq!(cache.counts().0, hits + 1);
    }

    /// Renders of different posts at once take at most the cores the cache was given: the
    /// others wait their turn, so a burst of views of posts not yet rendered cannot take every
    /// core from the rest of the server.
    #[test]
    fn renders_at_once_are_at_most_the_cores() {
        for size in [1 << 20, 0] {
            let cache = Arc::new(RenderCache::with_renders_at_once(size, 2));
            let threads: Vec<_> = (0..6)
                .map(|i| {
                    let cache = cache.clone();
                    let body =
                        format!("# Post {i}\n\n") + &"Some *text*, `code`.\n\n".repeat(4_000);
                    std::thread::spawn(move || cache.render(&body))
                })
                .collect();
            for thread in threads {
                thread.join().unwrap();
            }
            assert_eq!(cache.counts().1, 6, "cache of {size} bytes");
            let most = cache.most_at_once.load(Ordering::Relaxed);
            assert!(
                (1..=2).contains(&most),
                "{most} renders at once, cache of {size} bytes"
            );
        }
    }

    #[test]
    fn size_zero_renders_every_time() {
        let cache = RenderCache::new(0);
        cache.render("x");
        cache.render("x");
        assert_eq!(cache.counts(), (0, 2));
    }

    #[test]
    fn concurrent_views_of_a_new_body_render_it_once() {
        let cache = Arc::new(RenderCache::new(1 << 20));
        let body = "# Big\n\n".to_owned() + &"a paragraph of text. ".repeat(20_000);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (cache, body) = (cache.clone(), body.clone());
                std::thread::spawn(move || cache.render(&body))
            })
            .collect();
        let htmls: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(htmls.iter().all(|h| Arc::ptr_eq(h, &htmls[0])));
        assert_eq!(cache.counts(), (7, 1));
    }

    /// Review: entries of very different sizes (one near the whole capacity, then many small,
    /// then big again, each looked at twice so some go hot): the bytes held never pass the bound,
    /// and each answer is the render of its own Markdown.
    #[test]
    fn review_mixed_sizes_keep_the_bound_and_answer_their_own_markdown() {
        let capacity = 128 * 1024;
        let cache = RenderCache::new(capacity);
        let held = || cache.cache.as_ref().unwrap().weight();
        let big = |i: usize| format!("big {i}\n\n{}", "*x* ".repeat(8_000 + i));
        let small = |i: usize| format!("small *{i}*");
        for round in 0..3 {
            for i in 0..4 {
                for body in [big(i + round), small(i), big(i), small(i + 100)] {
                    for _ in 0..2 {
                        let html = cache.render(&body);
                        assert_eq!(&*html, super::super::markdown::render(&body));
                        assert!(held() <= capacity, "{} bytes held", held());
                    }
                }
            }
        }
    }

    /// Review: the largest sizes the option takes start (no panic, no huge allocation up front)
    /// and cache.
    #[test]
    fn review_the_largest_sizes_start_and_cache() {
        for bytes in [1, 31, 32, 33, u64::MAX / 2, u64::MAX] {
            let cache = RenderCache::new(bytes);
            let html = cache.render("*x*");
            assert_eq!(&*html, super::super::markdown::render("*x*"));
            cache.render("*x*");
            let expect_hit = bytes > 64;
            assert_eq!(cache.counts().0, u64::from(expect_hit), "{bytes}");
        }
    }

    /// Runs `work` on its own thread and fails (rather than hangs) if it has not finished in
    /// `secs`: a deadlock or a waiter that never wakes shows as a failure.
    fn within<R: Send + 'static>(secs: u64, work: impl FnOnce() -> R + Send + 'static) -> R {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(work());
        });
        rx.recv_timeout(std::time::Duration::from_secs(secs))
            .expect("finished in time (no deadlock, no waiter left asleep)")
    }

    /// Review 6: feeds (one thread renders 20 posts one after another) and post views of the same
    /// posts, all at once, one turn only, in a cache big enough and in one too small to keep a post
    /// (every view renders and gives its placeholder's waiters the HTML): the placeholder holder
    /// waits for a turn, and a turn holder never waits on a placeholder, so all finish, each with
    /// its own Markdown's HTML, never more than one render at once.
    #[test]
    fn review6_feeds_and_views_with_one_turn_all_finish() {
        for size in [1 << 20, 64, 0] {
            let cache = Arc::new(RenderCache::with_renders_at_once(size, 1));
            let body = |i: usize| format!("# Post {i}\n\n") + &"Some *text*.\n\n".repeat(200 + i);
            let done = within(60, {
                let cache = cache.clone();
                move || {
                    let threads: Vec<_> = (0..24)
                        .map(|t| {
                            let cache = cache.clone();
                            std::thread::spawn(move || {
                                let posts: Vec<usize> = if t % 3 == 0 {
                                    (0..20).rev().collect() // a feed, newest first
                                } else {
                                    vec![t % 20] // a post page
                                };
                                for i in posts {
                                    let html = cache.render(&body(i));
                                    assert_eq!(&*html, super::super::markdown::render(&body(i)));
                                }
                            })
                        })
                        .collect();
                    // Every thread joined, even after one that panicked.
                    let mut all = true;
                    for thread in threads {
                        all &= thread.join().is_ok();
                    }
                    all
                }
            });
            assert!(done, "a render thread panicked, cache of {size} bytes");
            assert_eq!(cache.most_at_once.load(Ordering::Relaxed), 1, "{size}");
            assert_eq!(
                *cache.rendering.lock().unwrap(),
                0,
                "every turn given back, {size}"
            );
        }
    }

    /// Review 6: a thread that panicked holding the turns' lock (poisoning it) does not stop the
    /// renders after it, and a turn is still given back.
    #[test]
    fn review6_a_poisoned_turn_lock_still_renders() {
        let cache = Arc::new(RenderCache::with_renders_at_once(1 << 20, 1));
        let poisoner = cache.clone();
        let _ = std::thread::spawn(move || {
            let _held = poisoner.rendering.lock().unwrap();
            panic!("poison the turns' lock");
        })
        .join();
        assert!(cache.rendering.is_poisoned());
        let html = within(10, {
            let cache = cache.clone();
            move || {
                let mut last = None;
                for i in 0..4 {
                    last = Some(cache.render(&format!("*{i}*")));
                }
                last
            }
        });
        assert!(html.unwrap().contains("<em>3</em>"));
        assert_eq!(
            *cache.rendering.lock().unwrap_or_else(|e| e.into_inner()),
            0
        );
    }

    /// Review 6: once the turns' lock is poisoned, `Condvar::wait_while` returns at the first
    /// wake-up (a spurious one, or one whose freed turn another thread took first) without
    /// looking at the count again, and `unwrap_or_else(into_inner)` takes that as a turn: the
    /// cap is no longer kept. Latent: nothing panics holding that lock today.
    #[test]
    fn review6_a_poisoned_turn_lock_still_keeps_the_cap() {
        let cache = Arc::new(RenderCache::with_renders_at_once(0, 1));
        let poisoner = cache.clone();
        let _ = std::thread::spawn(move || {
            let _held = poisoner.rendering.lock().unwrap();
            panic!("poison the turns' lock");
        })
        .join();
        let threads: Vec<_> = (0..16)
            .map(|t| {
                let cache = cache.clone();
                std::thread::spawn(move || {
                    for i in 0..10 {
                        cache.render(&format!("# {t} {i}\n\n{}", "*a* b\n\n".repeat(300)));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let most = cache.most_at_once.load(Ordering::Relaxed);
        assert_eq!(most, 1, "{most} renders at once with 1 allowed");
    }

    /// A runtime with at most `blocking` threads in its blocking pool (a small server's).
    fn runtime_with_blocking_threads(blocking: usize) -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(blocking)
            .enable_all()
            .build()
            .unwrap()
    }

    /// A view of `body`, spawned on the runtime; `entered` counts it once its render has been
    /// polled once (it has its place in a queue: for a turn, or for another view's render).
    fn spawn_view(
        cache: &Arc<RenderCache>,
        body: String,
        entered: &Arc<AtomicUsize>,
    ) -> tokio::task::JoinHandle<Result<Arc<str>, tokio::task::JoinError>> {
        let (cache, entered) = (cache.clone(), entered.clone());
        tokio::spawn(async move {
            let mut render = std::pin::pin!(cache.render_async(body));
            let first =
                std::future::poll_fn(|cx| std::task::Poll::Ready(render.as_mut().poll(cx))).await;
            entered.fetch_add(1, Ordering::SeqCst);
            match first {
                std::task::Poll::Ready(html) => html,
                std::task::Poll::Pending => render.await,
            }
        })
    }

    /// Waits (polling, without holding anything) until `ready` holds.
    async fn until(ready: impl Fn() -> bool) {
        while !ready() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    /// Views of more posts not rendered yet than there are turns: the views waiting for a turn
    /// hold no blocking-pool thread, so the rest of the server is not held up behind them. With
    /// one turn and two blocking threads, while the first render runs, other blocking work (a
    /// trivial task) and a view of a post already rendered both finish before any render does.
    #[test]
    fn views_waiting_for_a_turn_hold_no_blocking_thread() {
        let runtime = runtime_with_blocking_threads(2);
        let cache = Arc::new(RenderCache::with_renders_at_once(1 << 24, 1));
        let body = |i: usize| format!("# Post {i}\n\n") + &"Some *text*, `code`.\n\n".repeat(4_000);
        runtime.block_on(async {
            let cached = cache.render_async("*cached*".to_owned()).await.unwrap();
            let entered = Arc::new(AtomicUsize::new(0));
            let views: Vec<_> = (0..4)
                .map(|i| spawn_view(&cache, body(i), &entered))
                .collect();
            // A render has its turn; the other views wait for theirs.
            until(|| entered.load(Ordering::SeqCst) == 4 && *cache.rendering.lock().unwrap() == 1)
                .await;
            let probe = tokio::task::spawn_blocking(|| ());
            let again = cache.render_async("*cached*".to_owned());
            let (probe, again) = tokio::time::timeout(std::time::Duration::from_secs(120), async {
                tokio::join!(probe, again)
            })
            .await
            .expect("the other blocking task and the cached view finish");
            let renders_done = views.iter().filter(|v| v.is_finished()).count();
            assert_eq!(
                renders_done, 0,
                "the other blocking task and the cached view waited for {renders_done} renders"
            );
            probe.unwrap();
            assert!(Arc::ptr_eq(&again.unwrap(), &cached));
            for (i, view) in views.into_iter().enumerate() {
                let html = view.await.unwrap().unwrap();
                assert_eq!(&*html, super::super::markdown::render(&body(i)));
            }
        });
        assert_eq!(cache.counts(), (1, 5));
        assert_eq!(cache.most_at_once.load(Ordering::Relaxed), 1);
        assert_eq!(*cache.rendering.lock().unwrap(), 0);
    }

    /// Views of a post that another view is rendering wait for that render without holding a
    /// blocking-pool thread: with the post's placeholder held (as the view rendering it holds
    /// it) and two blocking threads, three views of the post wait, and other blocking work still
    /// runs. Once the HTML is in, the three answer it, without a render of their own.
    #[test]
    fn views_waiting_for_another_view_s_render_hold_no_blocking_thread() {
        let runtime = runtime_with_blocking_threads(2);
        let cache = Arc::new(RenderCache::with_renders_at_once(1 << 20, 1));
        let body = "# Awaited\n\nIts *text*.".to_owned();
        let key: [u8; 32] = Sha256::digest(body.as_bytes()).into();
        let quick_cache::sync::GuardResult::Guard(guard) =
            cache.cache.as_ref().unwrap().get_value_or_guard(&key, None)
        else {
            panic!("a post not rendered yet has no HTML");
        };
        let theirs: Arc<str> = Arc::from("<p>rendered by the other view</p>");
        runtime.block_on(async {
            let entered = Arc::new(AtomicUsize::new(0));
            let views: Vec<_> = (0..3)
                .map(|_| spawn_view(&cache, body.clone(), &entered))
                .collect();
            until(|| entered.load(Ordering::SeqCst) == 3).await;
            let probe = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                tokio::task::spawn_blocking(|| ()),
            )
            .await;
            assert!(
                probe.is_ok(),
                "other blocking work waited behind views waiting for a render"
            );
            assert!(views.iter().all(|v| !v.is_finished()), "no HTML yet");
            guard.insert(theirs.clone()).unwrap();
            for view in views {
                assert!(Arc::ptr_eq(&view.await.unwrap().unwrap(), &theirs));
            }
        });
        assert_eq!(cache.counts(), (3, 0));
        assert_eq!(cache.most_at_once.load(Ordering::Relaxed), 0);
    }

    /// Fails (rather than hangs) if `future` has not finished in 60 seconds.
    async fn within_a_minute<F: Future>(what: &str, future: F) -> F::Output {
        tokio::time::timeout(std::time::Duration::from_secs(60), future)
            .await
            .unwrap_or_else(|_| panic!("{what}: not finished in a minute"))
    }

    /// The views' way ([`RenderCache::render_async`]) keeps the cap and the dedupe: views of
    /// different posts at once render at most two at once with two turns (also once the count's
    /// lock is poisoned), and concurrent views of one post not rendered yet render it once.
    #[test]
    fn views_keep_the_cap_and_render_a_post_once() {
        let runtime = runtime_with_blocking_threads(64);
        let body = |i: usize| format!("# Post {i}\n\n") + &"Some *text*, `code`.\n\n".repeat(500);
        for (size, poisoned) in [(1 << 20, false), (0, false), (1 << 20, true)] {
            let cache = Arc::new(RenderCache::with_renders_at_once(size, 2));
            if poisoned {
                let poisoner = cache.clone();
                let _ = std::thread::spawn(move || {
                    let _held = poisoner.rendering.lock().unwrap();
                    panic!("poison the count's lock");
                })
                .join();
            }
            runtime.block_on(within_a_minute("views", async {
                let views: Vec<_> = (0..8)
                    .map(|i| {
                        let (cache, body) = (cache.clone(), body(i));
                        tokio::spawn(async move { cache.render_async(body).await })
                    })
                    .collect();
                for (i, view) in views.into_iter().enumerate() {
                    let html = view.await.unwrap().unwrap();
                    assert_eq!(&*html, super::super::markdown::render(&body(i)));
                }
            }));
            let most = cache.most_at_once.load(Ordering::Relaxed);
            assert!((1..=2).contains(&most), "{most} at once, {size} {poisoned}");
            assert_eq!(cache.counts(), (0, 8), "{size} {poisoned}");
            assert_eq!(
                *cache.rendering.lock().unwrap_or_else(|e| e.into_inner()),
                0
            );
        }
        let cache = Arc::new(RenderCache::with_renders_at_once(1 << 20, 2));
        let htmls = runtime.block_on(within_a_minute("views of one post", async {
            let views: Vec<_> = (0..8)
                .map(|_| {
                    let (cache, body) = (cache.clone(), body(0));
                    tokio::spawn(async move { cache.render_async(body).await })
                })
                .collect();
            let mut htmls = Vec::new();
            for view in views {
                htmls.push(view.await.unwrap().unwrap());
            }
            htmls
        }));
        assert!(htmls.iter().all(|h| Arc::ptr_eq(h, &htmls[0])));
        assert_eq!(cache.counts(), (7, 1));
    }

    /// A view whose request went away (its future dropped: a client that disconnected) while it
    /// waited for a turn, holding its post's placeholder, or while its render ran, or while
    /// another view waited for its render: no turn is kept and no placeholder blocks the post.
    /// The next view of the post renders it, a view waiting for the render takes it over, and
    /// every turn is given back.
    #[test]
    fn a_view_that_went_away_keeps_no_turn_and_blocks_no_post() {
        let runtime = runtime_with_blocking_threads(8);
        let cache = Arc::new(RenderCache::with_renders_at_once(1 << 24, 1));
        let body = |name: &str| format!("# {name}\n\n") + &"Some *text*, `code`.\n\n".repeat(4_000);
        let rendering = || *cache.rendering.lock().unwrap();
        runtime.block_on(within_a_minute("views", async {
            let entered = Arc::new(AtomicUsize::new(0));
            // Gone while waiting for a turn, with its post's placeholder.
            let long = spawn_view(&cache, body("long"), &entered);
            until(|| rendering() == 1).await;
            let waiting = spawn_view(&cache, body("waiting"), &entered);
            until(|| entered.load(Ordering::SeqCst) == 2).await;
            waiting.abort();
            assert!(waiting.await.unwrap_err().is_cancelled());
            long.await.unwrap().unwrap();
            let html = cache.render_async(body("waiting")).await.unwrap();
            assert_eq!(&*html, super::super::markdown::render(&body("waiting")));

            // Gone while rendering, with a view of the same post waiting for that render: the
            // waiting view renders it, once the first render has given its turn back.
            let first = spawn_view(&cache, body("rendering"), &entered);
            until(|| rendering() == 1).await;
            let second = spawn_view(&cache, body("rendering"), &entered);
            until(|| entered.load(Ordering::SeqCst) == 4).await;
            first.abort();
            assert!(first.await.unwrap_err().is_cancelled());
            let html = second.await.unwrap().unwrap();
            assert_eq!(&*html, super::super::markdown::render(&body("rendering")));
            until(|| rendering() == 0).await;
            // Both are cached now.
            for name in ["waiting", "rendering"] {
                cache.render_async(body(name)).await.unwrap();
            }
        }));
        assert_eq!(cache.most_at_once.load(Ordering::Relaxed), 1);
        assert_eq!(*cache.rendering.lock().unwrap(), 0);
        assert_eq!(cache.counts(), (2, 3));
    }

    /// Polls `future` at most `polls` times: dropped right after its `polls`-th `Pending` (a
    /// request that went away at that await point), `None` then.
    struct DropAfter<F> {
        future: Option<std::pin::Pin<Box<F>>>,
        polls: usize,
    }

    impl<F: Future> Future for DropAfter<F> {
        type Output = Option<F::Output>;
        fn poll(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Self::Output> {
            let Some(future) = self.future.as_mut() else {
                return std::task::Poll::Ready(None);
            };
            if let std::task::Poll::Ready(out) = future.as_mut().poll(cx) {
                return std::task::Poll::Ready(Some(out));
            }
            self.polls -= 1;
            if self.polls == 0 {
                self.future = None;
                return std::task::Poll::Ready(None);
            }
            std::task::Poll::Pending
        }
    }

    /// Review, holds: views of 3 posts (more views than turns) dropped after 1, 2, 3... polls,
    /// among views that run to their end, on a current-thread runtime and on a one-worker runtime,
    /// in a big cache, one too small to keep a post, and none: every view that finished has its
    /// own Markdown's HTML, every turn comes back, and afterwards each post renders (never stuck),
    /// a big cache then answering it from the cache.
    #[test]
    fn review_holds_views_dropped_at_every_await_point_keep_no_turn_and_block_no_post() {
        let runtimes: [fn() -> tokio::runtime::Runtime; 2] = [
            || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
            },
            || {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .max_blocking_threads(2)
                    .enable_all()
                    .build()
                    .unwrap()
            },
        ];
        let body = |i: usize| format!("# Post {i}\n\n") + &"Some *text*, `code`.\n\n".repeat(300);
        for (r, runtime) in runtimes.iter().enumerate() {
            for size in [1 << 20, 64, 0] {
                let runtime = runtime();
                let cache = Arc::new(RenderCache::with_renders_at_once(size, 1));
                runtime.block_on(within_a_minute("views", async {
                    let mut views = Vec::new();
                    for polls in 1..=6 {
                        for i in 0..3 {
                            let dropped = cache.clone();
                            let view = DropAfter {
                                future: Some(Box::pin(async move {
                                    dropped.render_async(body(i)).await
                                })),
                                polls,
                            };
                            views.push((i, tokio::spawn(view)));
                            let whole = cache.clone();
                            views.push((
                                i,
                                tokio::spawn(
                                    async move { Some(whole.render_async(body(i)).await) },
                                ),
                            ));
                        }
                    }
                    for (i, view) in views {
                        if let Some(html) = view.await.unwrap() {
                            assert_eq!(&*html.unwrap(), super::super::markdown::render(&body(i)));
                        }
                    }
                    until(|| *cache.rendering.lock().unwrap() == 0).await;
                    assert_eq!(cache.turns.available_permits(), 1, "runtime {r}, {size}");
                    for i in 0..3 {
                        let html = cache.render_async(body(i)).await.unwrap();
                        assert_eq!(&*html, super::super::markdown::render(&body(i)));
                    }
                    let (hits, _) = cache.counts();
                    for i in 0..3 {
                        cache.render_async(body(i)).await.unwrap();
                    }
                    let expected = if size == 1 << 20 { hits + 3 } else { hits };
                    assert_eq!(cache.counts().0, expected, "runtime {r}, {size}");
                }));
                assert_eq!(cache.most_at_once.load(Ordering::Relaxed), 1, "{r} {size}");
            }
        }
    }

    /// Review, holds: sync renders (threads, as the feed once did) and async views of the same 8
    /// posts at once, 2 turns, a big cache: each post is rendered once in all (the sync and async
    /// ways wait for each other's placeholder), never more than 2 renders at once, every call
    /// counted once as a hit or a miss, every turn given back.
    #[test]
    fn review_holds_sync_renders_and_async_views_of_the_same_posts_render_each_once() {
        let cache = Arc::new(RenderCache::with_renders_at_once(1 << 24, 2));
        let body = |i: usize| format!("# Post {i}\n\n") + &"Some *text*, `code`.\n\n".repeat(800);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let cache = cache.clone();
                std::thread::spawn(move || {
                    for k in 0..8 {
                        let i = (k + t * 2) % 8;
                        assert_eq!(
                            &*cache.render(&body(i)),
                            super::super::markdown::render(&body(i))
                        );
                    }
                })
            })
            .collect();
        runtime.block_on(within_a_minute("views", async {
            let views: Vec<_> = (0..32)
                .map(|v| {
                    let cache = cache.clone();
                    tokio::spawn(async move { (v % 8, cache.render_async(body(v % 8)).await) })
                })
                .collect();
            for view in views {
                let (i, html) = view.await.unwrap();
                assert_eq!(&*html.unwrap(), super::super::markdown::render(&body(i)));
            }
        }));
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(cache.counts(), (32 + 32 - 8, 8));
        let most = cache.most_at_once.load(Ordering::Relaxed);
        assert!((1..=2).contains(&most), "{most}");
        assert_eq!(*cache.rendering.lock().unwrap(), 0);
        assert_eq!(cache.turns.available_permits(), 2);
    }
}
