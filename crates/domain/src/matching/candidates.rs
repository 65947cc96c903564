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
//! the top entries by a strict order (score, then a hash of the pair), so the result does not
//! depend on how many threads ran.

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

/// Orders pairs by score, breaking ties by a hash of the pair. Scores tie often (every mentor
/// covering all goals at the same level gap scores the same); breaking ties by index would send
/// every similar mentee to the same few mentors, while a hash spreads them over all equals.
fn key(score: i64, mentee: usize, mentor: usize) -> (i64, u64) {
    let mut h = (mentee as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (mentor as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    h ^= h >> 29;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 32;
    (score, h)
}

/// Keeps the `limit` best `(key, index)` entries.
#[derive(Debug, Clone, Default)]
struct Top {
    entries: Vec<((i64, u64), u32)>,
    /// The worst kept key once full.
    min: (i64, u64),
}

impl Top {
    #[inline]
    fn offer(&mut self, key: (i64, u64), index: usize, limit: usize) {
        if limit == 0 || (self.entries.len() == limit && key <= self.min) {
            return;
        }
        if self.entries.len() < limit {
            self.entries.push((key, index as u32));
        } else if let Some(slot) = self.entries.iter_mut().find(|e| e.0 == self.min) {
            *slot = (key, index as u32);
        }
        if self.entries.len() == limit {
            self.min = self
                .entries
                .iter()
                .map(|e| e.0)
                .min()
                .unwrap_or((i64::MIN, 0));
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
                        let key = key(score, i, j);
                        out.mentee_top[k].offer(key, j, limits.per_mentee);
                        mentor_top.offer(key, i, limit);
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
            for ((score, _), j) in top.entries {
                scan.arcs.push(Arc {
                    mentee: i as u32,
                    mentor: j,
                    weight: score,
                });
            }
        }
        for (j, top) in r.mentor_top.into_iter().enumerate() {
            for (key, i) in top.entries {
                mentor_top[j].offer(key, i as usize, per_mentor[j]);
            }
        }
        offset += r.furthest.len();
        scan.furthest.extend(r.furthest);
        scan.feasible_pairs += r.feasible;
    }
    for (j, top) in mentor_top.into_iter().enumerate() {
        for ((score, _), i) in top.entries {
            scan.arcs.push(Arc {
                mentee: i,
                mentor: j as u32,
                weight: score,
            });
        }
    }
    scan.arcs.sort_unstable_by_key(|a| (a.mentee, a.mentor));
    scan.arcs.dedup_by_key(|a| (a.mentee, a.mentor));
    scan
}

/// Most improving pairs pricing adds per mentee and pass. Adding every improving pair at once
/// floods the graph with pairs that the next solve's duals would have ruled out anyway.
const PRICED_PER_MENTEE: usize = 4;

/// Scans every feasible pair with the solver's duals and returns, per mentee, the pairs outside
/// the graph that could improve the objective most (sorted by mentee then mentor). An empty
/// answer certifies that the assignment is optimal over all feasible pairs.
pub fn price(encoded: &Encoded, solver: &Solver) -> Vec<Arc> {
    let m = encoded.mentor_count();
    let results = parallel(encoded.mentees.len(), |range| {
        let mut found = Vec::new();
        for i in range {
            let e = &encoded.mentees[i];
            let mut best = Top::default();
            for j in 0..m {
                if let Ok(weight) = encoded.evaluate(e, j) {
                    let slack = solver.slack(i as u32, j as u32, weight);
                    if slack > 0 && !solver.has_arc(i as u32, j as u32) {
                        // The weight rides along in the hash slot's place of the key.
                        best.offer((slack, weight as u64), j, PRICED_PER_MENTEE);
                    }
                }
            }
            let mut row: Vec<Arc> = best
                .entries
                .into_iter()
                .map(|((_, weight), j)| Arc {
                    mentee: i as u32,
                    mentor: j,
                    weight: weight as i64,
                })
                .collect();
            row.sort_unstable_by_key(|a| a.mentor);
            found.extend(row);
        }
        found
    });
    results.into_iter().flatten().collect()
}
