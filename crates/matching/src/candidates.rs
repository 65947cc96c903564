//! Candidate generation and the pricing check.
//!
//! A national network has far more feasible pairs than a solver needs: most of them can never
//! be part of an optimal assignment. The first scan keeps, from every feasible pair, the best
//! few per mentee *and* the best few per mentor (mentee-side lists alone lose a lot when many
//! mentees want the same popular mentors). After solving that sparse graph, the pricing check
//! looks for feasible pairs whose weight exceeds what the solver's duals allow: such a pair
//! could improve the objective, so it is added and the graph solved again. The first check
//! looks at every feasible pair, later ones at the pairs whose slack the solve can have raised
//! (see [`Scope`]). When a check finds none, no feasible pair has positive slack and the
//! assignment is optimal over all of them — the round's certificate.
//!
//! Neither scan looks at every pair: both search the [`MentorIndex`], which skips groups of
//! mentors whose best possible score cannot reach the list (or beat the duals), and visits
//! exactly the pairs a scan of all pairs would have accepted. Both spread the mentees over the
//! available cores (rayon's thread pool). Lists keep the top entries by a strict order (score,
//! then a hash of the pair, then the index), so the result depends neither on how many threads
//! ran nor on the order of the search.

use rayon::prelude::*;
use tandem_assignment::{Edge, Solver};

use super::encoded::{Encoded, FEASIBLE, Stage};
use super::index::MentorIndex;

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

/// Mentees sampled for the first price of a mentor few mentee lists name. The stages raise
/// it soon, so a small sample does: on the 50,000 × 25,000 bench, 2,048 cost 0.36 s and saved
/// the first stage only 0.05 s over 256.
const SAMPLE: usize = 256;

/// The mentor-side search runs in stages over the mentees whose index modulo 16 is listed:
/// a sixteenth, then three, then the rest (on the 50,000 × 25,000 bench the search fell from
/// 1.4 s in one stage to 0.5 s; a fourth stage did not help).
const STAGES: [&[usize]; 3] = [
    &[0],
    &[4, 8, 12],
    &[1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15],
];

fn stage_of(mentee: usize) -> usize {
    let r = mentee % 16;
    STAGES.iter().position(|s| s.contains(&r)).unwrap_or(0)
}

/// Fewest mentees (or mentors, or pairs) one piece of the parallel work holds: a scan of fewer
/// stays in one piece (the warm start prices a few dozen mentees), and a piece of a national
/// scan costs far more to scan than to hand to one of rayon's threads.
pub(crate) const PIECE: usize = 256;

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

/// Keeps the `limit` best `(key, index)` entries. Entries are compared whole, index included,
/// so the kept set does not depend on the order in which entries are offered. A list takes
/// entries as they come until it is full, then sorts them best first, so that an entry that
/// displaces the worst one costs a binary search and a short move (finding and recomputing the
/// worst of an unsorted list took two passes over it).
#[derive(Debug, Clone, Default)]
pub(super) struct Top {
    entries: Vec<((i64, u64), u32)>,
}

impl Top {
    #[inline]
    fn offer(&mut self, key: (i64, u64), index: u32, limit: usize) {
        let entry = (key, index);
        if self.entries.len() < limit {
            self.entries.push(entry);
            if self.entries.len() == limit {
                self.entries.sort_unstable_by(|a, b| b.cmp(a));
            }
            return;
        }
        match self.entries.last() {
            Some(&worst) if entry > worst => {
                self.entries.pop();
                let at = self.entries.partition_point(|&e| e > entry);
                self.entries.insert(at, entry);
            }
            _ => {}
        }
    }

    /// Returns the worst kept score once `limit` entries are kept: only a score at least as
    /// high can still enter. A list without room counts as full at score 0.
    fn entry_score(&self, limit: usize) -> Option<i64> {
        if limit == 0 {
            return Some(0);
        }
        (self.entries.len() == limit).then(|| self.entries[limit - 1].0.0)
    }
}

/// The outcome of the first scan.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// Candidate arcs, sorted by mentee then mentor.
    pub arcs: Vec<Edge>,
    /// For each mentee, the furthest stage any mentor reached (see [`Stage`]).
    pub furthest: Vec<Stage>,
}

/// The furthest stage any mentor reaches with this mentee (one pass over all mentors).
fn furthest_stage(encoded: &Encoded, i: usize) -> Stage {
    let e = &encoded.mentees[i];
    (0..encoded.mentor_count())
        .map(|j| {
            encoded
                .evaluate(e, j)
                .map_or_else(|stage| stage, |_| FEASIBLE)
        })
        .max()
        .unwrap_or(0)
}

/// Finds the best candidates of both sides without looking at every pair.
///
/// Each mentee's list comes from a search of the mentor index whose floor rises to the worst
/// kept score once the list is full. A mentor's list needs the mentees that score highest with
/// it: the mentee lists already give every mentor some pairs, and the `limit`-th best score
/// among them is a price no pair in the mentor's final list can fall short of, so a second
/// search per mentee, with those prices, visits every pair that can enter a mentor's list. That
/// search runs in stages, and each stage raises the prices to what the lists hold so far.
pub fn scan(
    encoded: &Encoded,
    index: &MentorIndex,
    capacities: &[u32],
    limits: CandidateLimits,
) -> Scan {
    let m = encoded.mentor_count();
    let per_mentor: Vec<usize> = capacities
        .iter()
        .map(|&c| limits.per_place * c as usize)
        .collect();
    let rows: Vec<(Top, Stage)> = (0..encoded.mentees.len())
        .into_par_iter()
        .with_min_len(PIECE)
        .map(|i| {
            let mut top = Top::default();
            let mut any = false;
            let mut floor = 0;
            let limit = limits.per_mentee;
            index.search(
                encoded,
                &encoded.mentees[i],
                None,
                &mut floor,
                |j, w, floor| {
                    any = true;
                    top.offer(key(w, i, j as usize), j, limit);
                    *floor = match top.entry_score(limit) {
                        // Nothing enters an empty list: one feasible pair answers the search.
                        _ if limit == 0 => i64::MAX,
                        Some(worst) => worst - 1,
                        None => 0,
                    };
                },
            );
            let furthest = if any {
                FEASIBLE
            } else {
                furthest_stage(encoded, i)
            };
            (top, furthest)
        })
        .collect();

    // The price of a mentor: the `limit`-th best score its pairs in the mentee lists reach,
    // or, for a mentor too few lists name, the `limit`-th best score among a sample of mentees.
    let mut scores: Vec<Vec<i64>> = vec![Vec::new(); m];
    for (top, ..) in &rows {
        for &((score, _), j) in &top.entries {
            scores[j as usize].push(score);
        }
    }
    let nth_best = |s: &mut Vec<i64>, limit: usize| {
        if limit == 0 {
            i64::MAX / 4
        } else if s.len() >= limit {
            *s.select_nth_unstable_by(limit - 1, |a, b| b.cmp(a)).1
        } else {
            0
        }
    };
    let mut prices: Vec<i64> = (scores.iter_mut().zip(&per_mentor))
        .map(|(s, &limit)| nth_best(s, limit))
        .collect();
    let unnamed: Vec<usize> = (0..m)
        .filter(|&j| prices[j] == 0 && capacities[j] > 0)
        .collect();
    let stride = (encoded.mentees.len() / SAMPLE).max(1);
    let sampled: Vec<i64> = (unnamed.par_iter().with_min_len(PIECE))
        .map(|&j| {
            let mut s: Vec<i64> = (encoded.mentees.iter().step_by(stride))
                .filter_map(|e| encoded.evaluate(e, j).ok())
                .collect();
            nth_best(&mut s, per_mentor[j])
        })
        .collect();
    for (&j, price) in unnamed.iter().zip(sampled) {
        prices[j] = price;
    }
    // The mentees are searched in stages, each with prices raised to the `limit`-th best score
    // the mentor's list holds so far: a lower bound on its final entry score, so the lists
    // come out exactly the same, while later stages visit far fewer pairs.
    let mut mentor_top = vec![Top::default(); m];
    let mut staged: Vec<Vec<usize>> = vec![Vec::new(); STAGES.len()];
    for i in (0..rows.len()).filter(|&i| rows[i].1 == FEASIBLE) {
        staged[stage_of(i)].push(i);
    }
    for mentees in staged {
        for (j, top) in mentor_top.iter().enumerate() {
            if let Some(score) = top.entry_score(per_mentor[j]) {
                prices[j] = prices[j].max(score);
            }
        }
        let index = MentorIndex::for_prices(encoded, index.block(), &prices);
        let priced = index.prices(&prices);
        let found: Vec<(u32, (i64, u64), u32)> = (mentees.par_chunks(PIECE))
            .flat_map_iter(|piece| {
                let mut found = Vec::new();
                for &i in piece {
                    let mut floor = -1;
                    index.search(
                        encoded,
                        &encoded.mentees[i],
                        Some(&priced),
                        &mut floor,
                        |j, w, _| {
                            found.push((j, key(w, i, j as usize), i as u32));
                        },
                    );
                }
                found
            })
            .collect();
        for (j, key, i) in found {
            mentor_top[j as usize].offer(key, i, per_mentor[j as usize]);
        }
    }

    let mut scan = Scan::default();
    for (i, (top, furthest)) in rows.into_iter().enumerate() {
        for ((score, _), j) in top.entries {
            scan.arcs.push(Edge {
                agent: i as u32,
                target: j,
                weight: score,
            });
        }
        scan.furthest.push(furthest);
    }
    for (j, top) in mentor_top.into_iter().enumerate() {
        for ((score, _), i) in top.entries {
            scan.arcs.push(Edge {
                agent: i,
                target: j as u32,
                weight: score,
            });
        }
    }
    scan.arcs.sort_unstable_by_key(|a| (a.agent, a.target));
    scan.arcs.dedup_by_key(|a| (a.agent, a.target));
    scan
}

/// Counts the feasible pairs of the mentees that have any (those whose `furthest` stage is
/// [`FEASIBLE`]), on the calling thread, calling `pause` before every [`COUNT_CHUNK`] mentees:
/// it is a statistic only, which a round counts while its single-threaded solves leave a core
/// idle and holds in `pause` while its scans use every core.
pub fn count_feasible(
    encoded: &Encoded,
    index: &MentorIndex,
    furthest: &[Stage],
    pause: impl Fn(),
) -> u64 {
    (encoded
        .mentees
        .chunks(COUNT_CHUNK)
        .zip(furthest.chunks(COUNT_CHUNK)))
    .map(|(mentees, furthest)| {
        pause();
        (mentees.iter().zip(furthest))
            .filter(|(_, stage)| **stage == FEASIBLE)
            .map(|(e, _)| index.count_feasible(encoded, e))
            .sum::<u64>()
    })
    .sum()
}

/// Mentees [`count_feasible`] counts between two pauses (about half a millisecond of work on
/// the 50,000 × 25,000 bench).
pub const COUNT_CHUNK: usize = 64;

/// Most improving pairs pricing adds per mentee and pass. Adding every improving pair at once
/// floods the graph with pairs that the next solve's duals would have ruled out anyway; too few
/// takes more passes (on the 50,000 × 25,000 bench: 11 passes with 4, 7 with 16).
pub const PRICED_PER_MENTEE: usize = 16;

/// Most near pairs (see [`PriceLimits::near`]) pricing adds per mentee and pass.
pub const NEAR_PER_MENTEE: usize = 4;

/// How many pairs a pricing scan returns per mentee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceLimits {
    /// Most improving pairs (positive slack) per mentee.
    pub improving: usize,
    /// Most near pairs per mentee: pairs whose slack falls short of improving by less than
    /// `margin`, for a mentee with fewer than `improving` improving pairs. A solve that moves
    /// the duals by a little makes such pairs improve; in the graph already, they cannot start
    /// another pass. On the 50,000 × 25,000 bench, 4 near pairs within 27 points (the default
    /// margin) cut the auction's work by a third on seed 3 and by 7–9 % on seeds 1 and 2.
    pub near: usize,
    /// How far short of improving a near pair may fall, in units of weight.
    pub margin: i64,
}

impl PriceLimits {
    /// The limits a round prices with: [`PRICED_PER_MENTEE`], [`NEAR_PER_MENTEE`], and a margin
    /// of 1/64 of the best score a pair can reach (`best_pair`).
    pub fn for_scores(best_pair: i64) -> Self {
        Self {
            improving: PRICED_PER_MENTEE,
            near: NEAR_PER_MENTEE,
            margin: (best_pair / 64).max(0),
        }
    }
}

/// What a pricing scan found, each list sorted by mentee then mentor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Priced {
    /// Pairs that could improve the objective: when there are none in a scan of every pair
    /// that can have positive slack, the assignment is optimal over all feasible pairs.
    pub improving: Vec<Edge>,
    /// Pairs just short of improving (see [`PriceLimits::near`]).
    pub near: Vec<Edge>,
    /// For each mentee, the most slack any pair the scan looked at but did not return can
    /// have (pairs in the graph aside); [`UNSCANNED`] for a mentee the scan did not look at.
    /// At most 0 unless the mentee's list of improving pairs was cut at the limit.
    pub reach: Vec<i64>,
}

impl Priced {
    fn append(&mut self, more: Priced) {
        self.improving.extend(more.improving);
        self.near.extend(more.near);
    }
}

/// [`Priced::reach`] of a mentee a scan did not look at.
pub const UNSCANNED: i64 = i64::MIN;

/// Mentees whose pairs a pricing scan looks at with some mentors only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    pub mentees: Vec<u32>,
    pub mentors: Vec<u32>,
}

/// Which pairs a pricing scan looks at.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Every feasible pair.
    All,
    /// Every pair of `mentees`, and the pairs of each group's mentees with its mentors (no
    /// mentee in two places).
    Moved {
        mentees: &'a [u32],
        groups: &'a [Group],
    },
}

/// Returns, for each mentee, the feasible pairs in `scope` outside the graph that could improve
/// the objective most under the solver's duals, the near pairs (see [`PriceLimits`]), and how
/// much slack the pairs it looked at and left can have ([`Priced::reach`]). A search of the
/// mentor index skips every block whose best possible score minus its lowest mentor dual
/// cannot reach the mentee's floor, so this finds exactly the pairs a scan of all pairs in
/// scope would. No improving pair among every pair that can have positive slack certifies
/// that the assignment is optimal over all feasible pairs.
pub fn price(
    encoded: &Encoded,
    index: &MentorIndex,
    solver: &Solver,
    scope: Scope<'_>,
    limits: PriceLimits,
) -> Priced {
    let n = encoded.mentees.len();
    let mut found = Priced {
        reach: vec![UNSCANNED; n],
        ..Priced::default()
    };
    match scope {
        Scope::All => {
            let all: Vec<u32> = (0..n as u32).collect();
            price_mentees(encoded, index, solver, &all, limits, &mut found);
        }
        Scope::Moved { mentees, groups } => {
            price_mentees(encoded, index, solver, mentees, limits, &mut found);
            let p = solver.duals().1;
            for group in (groups.iter()).filter(|g| !g.mentees.is_empty() && !g.mentors.is_empty())
            {
                let among =
                    MentorIndex::for_prices_among(encoded, index.block(), p, &group.mentors);
                price_mentees(encoded, &among, solver, &group.mentees, limits, &mut found);
            }
        }
    }
    found
        .improving
        .sort_unstable_by_key(|a| (a.agent, a.target));
    found.near.sort_unstable_by_key(|a| (a.agent, a.target));
    found
}

/// Prices every pair of `mentees` with the mentors of `index` and adds what it finds to `found`.
fn price_mentees(
    encoded: &Encoded,
    index: &MentorIndex,
    solver: &Solver,
    mentees: &[u32],
    limits: PriceLimits,
    found: &mut Priced,
) {
    let (pi, p) = solver.duals();
    let prices = index.prices(p);
    let PriceLimits {
        improving: most,
        near,
        margin,
    } = limits;
    // Kept entries: `((slack, weight), mentor)`; the weight rides along in the hash slot's
    // place of the key.
    let arcs = |i: u32, top: Top| {
        let mut row: Vec<Edge> = (top.entries.into_iter())
            .map(|((_, weight), j)| Edge {
                agent: i,
                target: j,
                weight: weight as i64,
            })
            .collect();
        row.sort_unstable_by_key(|a| a.target);
        row
    };
    let results: Vec<(Priced, Vec<(u32, i64)>)> = (mentees.par_chunks(PIECE))
        .map(|piece| {
            let mut found = Priced::default();
            let mut reach = Vec::with_capacity(piece.len());
            for &i in piece {
                let (mut best, mut close) = (Top::default(), Top::default());
                let own = pi[i as usize];
                // A pair is visited when its weight minus the mentor's dual beats the floor: its
                // slack is above `floor − own`.
                let near_floor = |close: &Top| {
                    (close.entry_score(near)).map_or(own - margin, |worst| own + worst - 1)
                };
                let mut floor = if near == 0 { own } else { near_floor(&close) };
                let e = &encoded.mentees[i as usize];
                index.search(encoded, e, Some(&prices), &mut floor, |j, weight, floor| {
                    if solver.has_edge(i, j) {
                        return;
                    }
                    let slack = weight - own - p[j as usize];
                    if slack > 0 {
                        best.offer((slack, weight as u64), j, most);
                    } else {
                        close.offer((slack, weight as u64), j, near);
                    }
                    // Once the improving list is full, its mentee gets no near pairs.
                    *floor = match best.entry_score(most) {
                        Some(worst) => own + worst - 1,
                        None if near == 0 => own,
                        None => near_floor(&close),
                    };
                });
                // A pair not visited has at most `floor − own` of slack, one turned away from a
                // full list at most the list's worst (without room for improving pairs, nothing
                // is known).
                let most_slack = match (best.entry_score(most), close.entry_score(near)) {
                    _ if most == 0 => i64::MAX,
                    (Some(worst), _) => worst,
                    (None, Some(worst)) if near > 0 => worst,
                    _ => floor - own,
                };
                reach.push((i, most_slack));
                if best.entry_score(most).is_none() {
                    found.near.extend(arcs(i, close));
                }
                found.improving.extend(arcs(i, best));
            }
            (found, reach)
        })
        .collect();
    for (more, reach) in results {
        found.append(more);
        for (i, most_slack) in reach {
            found.reach[i as usize] = most_slack;
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// A list keeps the best `limit` entries whatever the order they come in, and its entry
        /// score is the worst of them once full.
        #[test]
        fn a_list_keeps_the_best_entries_in_any_order(
            entries in proptest::collection::vec(((-3i64..4, 0u64..3), 0u32..40), 0..40),
            limit in 0usize..8,
        ) {
            // Each pair is offered once, in the order generated.
            let mut seen = std::collections::HashSet::new();
            let offered: Vec<_> = entries.into_iter().filter(|e| seen.insert(*e)).collect();
            let mut best = offered.clone();
            best.sort_unstable_by(|a, b| b.cmp(a));
            best.truncate(limit);
            let mut top = Top::default();
            for &(key, index) in &offered {
                top.offer(key, index, limit);
            }
            let mut kept = top.entries.clone();
            kept.sort_unstable_by(|a, b| b.cmp(a));
            prop_assert_eq!(&kept, &best);
            let full = limit > 0 && best.len() == limit;
            prop_assert_eq!(top.entry_score(limit), match limit {
                0 => Some(0),
                _ => full.then(|| best[limit - 1].0.0),
            });
        }
    }
}
