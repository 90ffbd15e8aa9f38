//! The host encoder's buffers, kept between passes: a pass takes its activations, its tape
//! and its temporaries from here and gives them back when done, so that steps after the first
//! allocate nothing (fresh pages cost a fault each: 15 % of a MiniLM input-head step, measured).
//! The kept buffers never hold more than the most a pass has had in use at once.

use std::sync::Mutex;

/// Free buffers, reused best-fit by capacity, and the bytes handed out.
#[derive(Default)]
pub(super) struct Workspace {
    pool: Mutex<Pool>,
}

#[derive(Default)]
struct Pool {
    free: Vec<Vec<f32>>,
    /// Floats in buffers handed out and not given back.
    in_use: usize,
    /// The most `in_use` has been.
    peak: usize,
}

impl Workspace {
    /// `n` zeros, in the smallest kept buffer that holds them (a new one if none does).
    pub fn zeros(&self, n: usize) -> Vec<f32> {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        let best = (pool.free.iter().enumerate())
            .filter(|(_, v)| v.capacity() >= n)
            .min_by_key(|(_, v)| v.capacity())
            .map(|(i, _)| i);
        let mut v = match best {
            Some(i) => pool.free.swap_remove(i),
            None => Vec::with_capacity(n),
        };
        pool.in_use += v.capacity();
        pool.peak = pool.peak.max(pool.in_use);
        drop(pool);
        v.clear();
        v.resize(n, 0.0);
        v
    }

    /// Keeps `buffers` for later passes, dropping the smallest kept ones while the kept
    /// floats exceed the peak in use.
    pub fn give(&self, buffers: impl IntoIterator<Item = Vec<f32>>) {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        for v in buffers.into_iter().filter(|v| v.capacity() > 0) {
            pool.in_use = pool.in_use.saturating_sub(v.capacity());
            pool.free.push(v);
        }
        let mut kept: usize = pool.free.iter().map(Vec::capacity).sum();
        if kept > pool.peak {
            pool.free.sort_by_key(|v| std::cmp::Reverse(v.capacity()));
            while kept > pool.peak {
                kept -= pool.free.pop().map_or(kept, |v| v.capacity());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Workspace;

    #[test]
    fn buffers_are_reused_zeroed_and_bounded_by_the_peak() {
        let ws = Workspace::default();
        let mut a = ws.zeros(1000);
        a.iter_mut().for_each(|v| *v = 1.0);
        let ptr = a.as_ptr();
        ws.give([a]);
        let b = ws.zeros(600);
        assert_eq!(b.as_ptr(), ptr, "the kept buffer is reused");
        assert!(b.iter().all(|&v| v == 0.0) && b.len() == 600);
        ws.give([b, vec![0.0; 5000], vec![0.0; 7000]]);
        // Peak in use was 1000 floats: buffers given from elsewhere are not all kept.
        let kept: usize = ws.pool.lock().unwrap().free.iter().map(Vec::capacity).sum();
        assert!(kept <= 1000, "kept {kept} floats");
    }
}
