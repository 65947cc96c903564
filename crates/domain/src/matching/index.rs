//! An index of the mentors that lets a scan skip, for one mentee, every group of mentors that
//! cannot matter to it.
//!
//! Mentors with a free place are sorted by the keys the hard constraints and the score depend on
//! most (level, format, region, topics, languages) and cut into a balanced tree of ranges; every
//! node keeps a summary of its mentors (languages and formats any of them offers, the regions and
//! topics they cover, the level range, …). From a summary and a mentee, [`MentorIndex::search`]
//! derives an upper bound on the score of any pair with a mentor below the node, or knows that
//! none is feasible, and skips the node when the bound minus the lowest price of its mentors
//! cannot beat the caller's floor. The bounds only ever over-estimate, so a search visits every
//! pair a scan of all mentors would have accepted — the pruned scans stay exact.

use super::encoded::{Encoded, Languages, Mentee, share};

/// Mentors per leaf: small enough for tight bounds, large enough to keep the tree shallow.
const LEAF: usize = 8;

/// Bit of a region id in a region set; ids past 62 share the last bit, which keeps the sets
/// over-approximations.
fn region_bit(region: u32) -> u64 {
    1 << region.min(63)
}

/// What the mentors below a node have, taken together.
#[derive(Debug, Clone, Copy, Default)]
struct Summary {
    languages: Languages,
    regions: u64,
    min_level: i32,
    max_level: i32,
    topics: u32,
    /// Industries any mentor has, and those every mentor has.
    industries_any: u32,
    industries_all: u32,
    formats: u8,
    /// Most breadth points (in units of the breadth weight) any pair can earn.
    breadth: i64,
}

impl Summary {
    fn of(encoded: &Encoded, j: usize) -> Self {
        let m = &encoded.mentors;
        Self {
            languages: m.languages[j],
            regions: region_bit(m.region[j]),
            min_level: m.level[j],
            max_level: m.level[j],
            topics: m.topics[j],
            industries_any: m.industries[j],
            industries_all: m.industries[j],
            formats: m.formats[j],
            // A feasible pair covers at least one topic.
            breadth: m.experience[j] + (m.topic_count[j] - 1).min(5),
        }
    }

    fn merge(&self, o: &Self) -> Self {
        Self {
            languages: [
                self.languages[0] | o.languages[0],
                self.languages[1] | o.languages[1],
                self.languages[2] | o.languages[2],
            ],
            regions: self.regions | o.regions,
            min_level: self.min_level.min(o.min_level),
            max_level: self.max_level.max(o.max_level),
            topics: self.topics | o.topics,
            industries_any: self.industries_any | o.industries_any,
            industries_all: self.industries_all & o.industries_all,
            formats: self.formats | o.formats,
            breadth: self.breadth.max(o.breadth),
        }
    }
}

#[derive(Debug, Clone)]
struct Node {
    summary: Summary,
    /// The node's mentors: `order[start..end]`.
    start: u32,
    end: u32,
    /// Children, or `None` for a leaf.
    children: Option<(u32, u32)>,
}

/// What a mentee needs from a region set, precomputed once per search.
struct Query<'a> {
    mentee: &'a Mentee,
    /// Regions where the mentee can meet in person, its own region, and its country's regions.
    meet: u64,
    same: u64,
    country: u64,
}

impl<'a> Query<'a> {
    fn new(encoded: &Encoded, mentee: &'a Mentee) -> Self {
        let (mut meet, mut same, mut country) = (0, 0, 0);
        if mentee.has_region {
            let own = encoded.regions[mentee.region as usize];
            for (r, &(c, whole)) in encoded.regions.iter().enumerate() {
                let bit = region_bit(r as u32);
                if r == mentee.region as usize {
                    same |= bit;
                }
                if c == own.0 {
                    country |= bit;
                    if r == mentee.region as usize || whole || own.1 {
                        meet |= bit;
                    }
                }
            }
        }
        Self {
            mentee,
            meet,
            same,
            country,
        }
    }
}

/// Lowest price per node, for one pricing pass.
#[derive(Debug, Clone)]
pub struct NodePrices(Vec<i64>);

/// Per-mentor prices a search subtracts from the score: the pricing check's mentor duals, or the
/// score a mentor's candidate list already guarantees.
#[derive(Debug, Clone, Copy)]
pub struct Prices<'a> {
    pub mentors: &'a [i64],
    pub nodes: &'a NodePrices,
}

/// The mentors with a free place, as a tree of ranges with summaries.
#[derive(Debug, Clone, Default)]
pub struct MentorIndex {
    order: Vec<u32>,
    nodes: Vec<Node>,
    /// False when a weight is negative; the bounds then only rule out infeasible nodes.
    bounded: bool,
}

impl MentorIndex {
    /// Indexes the mentors of a round.
    pub fn new(encoded: &Encoded) -> Self {
        let m = &encoded.mentors;
        let mut order: Vec<u32> = (0..encoded.mentor_count() as u32)
            .filter(|&j| m.capacity[j as usize] > 0)
            .collect();
        order.sort_by_key(|&j| {
            let j = j as usize;
            (
                m.level[j],
                m.formats[j],
                m.region[j],
                m.topics[j],
                m.industries[j],
                m.languages[j],
                j,
            )
        });
        let w = &encoded.weights;
        let mut index = Self {
            order,
            nodes: Vec::new(),
            bounded: [
                w.goal_coverage,
                w.level_gap,
                w.industry,
                w.region,
                w.breadth,
            ]
            .iter()
            .all(|&x| x >= 0),
        };
        if !index.order.is_empty() {
            index.build(encoded, 0, index.order.len());
        }
        index
    }

    /// Builds the node for `order[start..end]` and its subtree; parents precede children.
    fn build(&mut self, encoded: &Encoded, start: usize, end: usize) -> usize {
        let id = self.nodes.len();
        self.nodes.push(Node {
            summary: Summary::default(),
            start: start as u32,
            end: end as u32,
            children: None,
        });
        if end - start <= LEAF {
            let mut s = Summary::of(encoded, self.order[start] as usize);
            for &j in &self.order[start + 1..end] {
                s = s.merge(&Summary::of(encoded, j as usize));
            }
            self.nodes[id].summary = s;
        } else {
            let mid = start + (end - start) / 2;
            let left = self.build(encoded, start, mid);
            let right = self.build(encoded, mid, end);
            self.nodes[id].summary = self.nodes[left].summary.merge(&self.nodes[right].summary);
            self.nodes[id].children = Some((left as u32, right as u32));
        }
        id
    }

    /// Returns the lowest of `prices` below every node.
    pub fn node_prices(&self, prices: &[i64]) -> NodePrices {
        let mut low = vec![i64::MAX; self.nodes.len()];
        // Children come after their parent, so a backwards sweep sees them first.
        for (id, node) in self.nodes.iter().enumerate().rev() {
            low[id] = match node.children {
                Some((l, r)) => low[l as usize].min(low[r as usize]),
                None => self.order[node.start as usize..node.end as usize]
                    .iter()
                    .map(|&j| prices[j as usize])
                    .min()
                    .unwrap_or(i64::MAX),
            };
        }
        NodePrices(low)
    }

    /// Returns an upper bound on the weight of any pair of the mentee with a mentor summarised
    /// by `s`, or `None` if no such pair is feasible.
    fn bound(&self, encoded: &Encoded, q: &Query<'_>, s: &Summary) -> Option<i64> {
        let e = q.mentee;
        if !share(&s.languages, &e.languages) || s.max_level <= e.level || s.formats & e.format == 0
        {
            return None;
        }
        if e.needs_region && s.regions & q.meet == 0 {
            return None;
        }
        let covered = s.topics & e.goal_mask;
        if covered == 0 {
            return None;
        }
        if !self.bounded {
            return Some(i64::MAX / 4);
        }
        let w = &encoded.weights;
        let covered_priority: u32 = (e.goals.iter())
            .filter(|(topic, _)| covered >> topic & 1 == 1)
            .map(|g| g.1)
            .sum();
        let coverage =
            w.goal_coverage * i64::from(covered_priority) / i64::from(e.total_priority.max(1));
        // The level score falls with the distance from the ideal gap: take the closest level.
        let ideal = e.level + w.ideal_level_gap;
        let best = ideal.clamp(s.min_level.max(e.level + 1), s.max_level);
        let off = i64::from((best - ideal).abs());
        let level = (w.level_gap - off * w.level_gap / 3).max(0);
        let industry = match e.preference {
            tandem_proto::IndustryPreference::Same if s.industries_any & e.industry != 0 => {
                w.industry
            }
            tandem_proto::IndustryPreference::Cross if s.industries_all & e.industry == 0 => {
                w.industry
            }
            tandem_proto::IndustryPreference::Unspecified if s.industries_any & e.industry != 0 => {
                w.industry / 4
            }
            _ => 0,
        };
        let region = if !e.has_region {
            0
        } else if s.regions & q.same != 0 {
            w.region
        } else if s.regions & q.country != 0 {
            w.region / 2
        } else {
            0
        };
        let breadth = w.breadth * s.breadth;
        Some((coverage + level + industry + region + breadth).max(1) + encoded.bonus)
    }

    /// Visits every feasible pair of the mentee whose weight minus the mentor's price (0 without
    /// prices) exceeds `*floor`, calling `visit(mentor, weight, floor)`; `visit` may raise the
    /// floor to prune the rest of the search. Better nodes are searched first.
    pub fn search(
        &self,
        encoded: &Encoded,
        mentee: &Mentee,
        prices: Option<Prices<'_>>,
        floor: &mut i64,
        mut visit: impl FnMut(u32, i64, &mut i64),
    ) {
        if self.nodes.is_empty() {
            return;
        }
        let q = Query::new(encoded, mentee);
        let node_bound = |id: u32| {
            let b = self.bound(encoded, &q, &self.nodes[id as usize].summary)?;
            Some(b.saturating_sub(prices.map_or(0, |p| p.nodes.0[id as usize])))
        };
        let mut stack: Vec<(i64, u32)> = Vec::with_capacity(32);
        if let Some(b) = node_bound(0) {
            stack.push((b, 0));
        }
        while let Some((b, id)) = stack.pop() {
            if b <= *floor {
                continue;
            }
            let node = &self.nodes[id as usize];
            match node.children {
                Some((l, r)) => {
                    let (bl, br) = (node_bound(l), node_bound(r));
                    let (first, second) = if bl.unwrap_or(i64::MIN) >= br.unwrap_or(i64::MIN) {
                        ((bl, l), (br, r))
                    } else {
                        ((br, r), (bl, l))
                    };
                    // The better child goes on top of the stack.
                    for (b, c) in [second, first] {
                        if let Some(b) = b.filter(|&b| b > *floor) {
                            stack.push((b, c));
                        }
                    }
                }
                None => {
                    for &j in &self.order[node.start as usize..node.end as usize] {
                        if let Ok(w) = encoded.evaluate(mentee, j as usize) {
                            let price = prices.map_or(0, |p| p.mentors[j as usize]);
                            if w - price > *floor {
                                visit(j, w, floor);
                            }
                        }
                    }
                }
            }
        }
    }
}
