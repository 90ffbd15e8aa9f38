//! The host encoder's buffers, kept between passes: a pass takes its activations, its tape
//! and its temporaries from here and gives them back when done, so that steps after the first
//! allocate nothing (fresh pages cost a fault each: 15 % of a MiniLM input-head step, measured).

use std::sync::Mutex;

/// Most buffers kept; past it the smallest are dropped.
const KEEP: usize = 256;

/// Free buffers, reused best-fit by capacity.
#[derive(Default)]
pub(super) struct Workspace {
    free: Mutex<Vec<Vec<f32>>>,
}

impl Workspace {
    /// `n` zeros, in the smallest kept buffer that holds them (a new one if none does).
    pub fn zeros(&self, n: usize) -> Vec<f32> {
        let kept = {
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            let best = (free.iter().enumerate())
                .filter(|(_, v)| v.capacity() >= n)
                .min_by_key(|(_, v)| v.capacity())
                .map(|(i, _)| i);
            best.map(|i| free.swap_remove(i))
        };
        match kept {
            Some(mut v) => {
                v.clear();
                v.resize(n, 0.0);
                v
            }
            None => vec![0f32; n],
        }
    }

    /// Keeps `buffers` for later passes.
    pub fn give(&self, buffers: impl IntoIterator<Item = Vec<f32>>) {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.extend(buffers.into_iter().filter(|v| v.capacity() > 0));
        if free.len() > KEEP {
            free.sort_by_key(|v| std::cmp::Reverse(v.capacity()));
            free.truncate(KEEP);
        }
    }
}
