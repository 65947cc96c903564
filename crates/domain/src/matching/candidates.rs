//! Candidate generation and the pricing check.
//!
//! A national network has far more feasible pairs than a solver needs: most of them can never
//! be part of an optimal assignment. The first scan keeps, from every feasible pair, the best
//! few per mentee *and* the best few per mentor (mentee-side lists alone lose a lot when many
//! mentees want the same popular mentors). After solving that sparse graph, the pricing check
//! scans every feasible pair again with the solver's duals: a pair whose weight exceeds what the
//! duals allow could improve the objective, so it is added and the graph solved again. When a
//! scan finds none, the assignment is optimal over all feasible pairs — the round's certificate.
//!
//! Both scans split the mentees into fixed chunks spread over the available cores. Lists keep
//! the top entries by a strict order (score, then index), so the result does not depend on how
//! many threads ran.

use super::encoded::{Encoded, FEASIBLE, Stage};
use super::{Arc, Solver};

/// How many candidates each side keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CandidateLimits {
    /// Best mentors kept per mentee.
    pub per_mentee: usize,
    /// Best mentees kept per free place of a mentor.
    pub per_place: usize,
}

impl Default for CandidateLimits {
    fn default() -> Self {
        Self {
            per_mentee: 12,
            per_place: 4,
        }
    }
}

/// Number of chunks the mentees are split into, independent of the machine.
const CHUNKS: usize = 16;

/// Orders entries by score, then by lower index, as one integer (higher is better).
fn key(score: i64, index: usize) -> i64 {
    (score << 32) | i64::from(u32::MAX - index as u32)
}

fn index_of(key: i64) -> u32 {
    u32::MAX - (key & 0xFFFF_FFFF) as u32
}

/// Keeps the `limit` largest keys.
#[derive(Debug, Clone, Default)]
struct Top {
    keys: Vec<i64>,
    min: i64,
}

impl Top {
    #[inline]
    fn offer(&mut self, key: i64, limit: usize) {
        if limit == 0 {
            return;
        }
        if self.keys.len() < limit {
            self.keys.push(key);
            if self.keys.len() == limit {
                self.min = self.keys.iter().copied().min().unwrap_or(i64::MIN);
            }
        } else if key > self.min {
            if let Some(slot) = self.keys.iter_mut().find(|k| **k == self.min) {
                *slot = key;
            }
            self.min = self.keys.iter().copied().min().unwrap_or(i64::MIN);
        }
    }
}

/// The outcome of the first scan.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// Candidate arcs, sorted by mentee then mentor.
    pub arcs: Vec<Arc>,
    /// For each mentee, the furthest stage any mentor reached (see [`Stage`]).
    pub furthest: Vec<Stage>,
    /// Feasible pairs seen.
    pub feasible_pairs: u64,
}

fn chunks(n: usize) -> Vec<std::ops::Range<usize>> {
    let size = n.div_ceil(CHUNKS).max(1);
    (0..n)
        .step_by(size)
        .map(|start| start..(start + size).min(n))
        .collect()
}

/// Runs `work` over every chunk of mentees on the available cores and returns the results in
/// chunk order.
fn parallel<T: Send>(n: usize, work: impl Fn(std::ops::Range<usize>) -> T + Sync) -> Vec<T> {
    let ranges = chunks(n);
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(ranges.len())
        .max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, T)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let c = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(range) = ranges.get(c) else { break };
                        done.push((c, work(range.clone())));
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    results.sort_by_key(|(c, _)| *c);
    results.into_iter().map(|(_, t)| t).collect()
}

struct ChunkScan {
    mentee_top: Vec<Top>,
    mentor_top: Vec<Top>,
    furthest: Vec<Stage>,
    feasible: u64,
}

/// Scans every pair once and keeps the best candidates of both sides.
pub fn scan(encoded: &Encoded, capacities: &[u32], limits: CandidateLimits) -> Scan {
    let m = encoded.mentor_count();
    let per_mentor: Vec<usize> = capacities
        .iter()
        .map(|&c| limits.per_place * c as usize)
        .collect();
    let results = parallel(encoded.mentees.len(), |range| {
        let mut out = ChunkScan {
            mentee_top: vec![Top::default(); range.len()],
            mentor_top: vec![Top::default(); m],
            furthest: vec![0; range.len()],
            feasible: 0,
        };
        for (k, i) in range.enumerate() {
            let e = &encoded.mentees[i];
            let mut furthest = 0;
            for (j, (mentor_top, &limit)) in out.mentor_top.iter_mut().zip(&per_mentor).enumerate()
            {
                match encoded.evaluate(e, j) {
                    Ok(score) => {
                        furthest = FEASIBLE;
                        out.feasible += 1;
                        out.mentee_top[k].offer(key(score, j), limits.per_mentee);
                        mentor_top.offer(key(score, i), limit);
                    }
                    Err(stage) => furthest = furthest.max(stage),
                }
            }
            out.furthest[k] = furthest;
        }
        out
    });

    let mut scan = Scan::default();
    let mut mentor_top = vec![Top::default(); m];
    let mut offset = 0;
    for r in results {
        for (k, top) in r.mentee_top.into_iter().enumerate() {
            let i = offset + k;
            for key in top.keys {
                scan.arcs.push(Arc {
                    mentee: i as u32,
                    mentor: index_of(key),
                    weight: key >> 32,
                });
            }
        }
        for (j, top) in r.mentor_top.into_iter().enumerate() {
            for key in top.keys {
                mentor_top[j].offer(key, per_mentor[j]);
            }
        }
        offset += r.furthest.len();
        scan.furthest.extend(r.furthest);
        scan.feasible_pairs += r.feasible;
    }
    for (j, top) in mentor_top.into_iter().enumerate() {
        for key in top.keys {
            scan.arcs.push(Arc {
                mentee: index_of(key),
                mentor: j as u32,
                weight: key >> 32,
            });
        }
    }
    scan.arcs.sort_unstable_by_key(|a| (a.mentee, a.mentor));
    scan.arcs.dedup_by_key(|a| (a.mentee, a.mentor));
    scan
}

/// Scans every feasible pair with the solver's duals and returns the pairs outside the graph
/// that could improve the objective, sorted by mentee then mentor.
pub fn price(encoded: &Encoded, solver: &Solver) -> Vec<Arc> {
    let m = encoded.mentor_count();
    let results = parallel(encoded.mentees.len(), |range| {
        let mut found = Vec::new();
        for i in range {
            let e = &encoded.mentees[i];
            for j in 0..m {
                if let Ok(weight) = encoded.evaluate(e, j)
                    && solver.slack(i as u32, j as u32, weight) > 0
                    && !solver.has_arc(i as u32, j as u32)
                {
                    found.push(Arc {
                        mentee: i as u32,
                        mentor: j as u32,
                        weight,
                    });
                }
            }
        }
        found
    });
    results.into_iter().flatten().collect()
}
