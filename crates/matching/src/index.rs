//! An index of the mentors that lets a scan skip, for one mentee, every block of mentors that
//! cannot matter to it, and score the rest with a tight loop over columns.
//!
//! Mentors with a free place are sorted by level and region, then by format, topics,
//! industries and languages, and cut into blocks of at most [`BLOCK`] mentors that share a level
//! and a region. Every block keeps a summary of its mentors (languages and formats any of them
//! offers, the topics and industries they cover, the most breadth points). From a summary and a
//! mentee, [`MentorIndex::search`] knows that no pair in the block is feasible, or derives an
//! upper bound on the score of any pair in it, and skips the block when the bound minus the
//! lowest price of its mentors cannot beat the caller's floor. The bounds only ever
//! over-estimate, so a search visits every pair a scan of all mentors would have accepted — the
//! pruned scans stay exact.
//!
//! A block that is not skipped goes whole through a loop without branches over 32-bit columns,
//! which the compiler turns into vector instructions (AVX2 where the processor has it, chosen at
//! run time). That loop bounds every pair from above; only the pairs that pass are scored
//! exactly, from the same columns. [`MentorIndex::for_prices`] orders the mentors of a level
//! and region by price instead, for the pricing scans. A property test holds every search to a
//! scan of all pairs with [`Encoded::evaluate`].

use super::encoded::{Encoded, Languages, Mentee, share};

/// Most mentors per block: small enough for useful bounds, large enough that the loop over a
/// block, not the bound, is where a search spends its time.
pub const BLOCK: usize = 128;

/// What the mentors of a block have, taken together.
#[derive(Debug, Clone, Copy, Default)]
struct Summary {
    languages: Languages,
    topics: u32,
    /// Industries any mentor has, and those every mentor has.
    industries_any: u32,
    industries_all: u32,
    formats: u32,
    /// Most breadth points (in units of the breadth weight) any pair can earn.
    breadth: i64,
}

impl Summary {
    fn of(encoded: &Encoded, j: usize) -> Self {
        let m = &encoded.mentors;
        Self {
            languages: m.languages[j],
            topics: m.topics[j],
            industries_any: m.industries[j],
            industries_all: m.industries[j],
            formats: u32::from(m.formats[j]),
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
            topics: self.topics | o.topics,
            industries_any: self.industries_any | o.industries_any,
            industries_all: self.industries_all & o.industries_all,
            formats: self.formats | o.formats,
            breadth: self.breadth.max(o.breadth),
        }
    }
}

/// Mentors of one level and region: `positions start..end` of the index.
#[derive(Debug, Clone)]
struct Block {
    start: u32,
    end: u32,
    level: i32,
    region: u32,
    summary: Summary,
}

/// The mentors' columns in index order, narrowed to 32-bit lanes for the block filter.
#[derive(Debug, Clone, Default)]
struct Columns {
    /// Languages as bits of the round's own language numbering (see [`Columns::language_bits`]).
    languages: Vec<u32>,
    /// Bit of each ISO 639-1 position in the round's numbering, or 0 for a language no mentor
    /// speaks.
    language_bit: Vec<u32>,
    formats: Vec<u32>,
    topics: Vec<u32>,
    industries: Vec<u32>,
    /// Breadth points of the experience band, and of the expertise topics before the covered
    /// goals are taken off.
    experience_points: Vec<i32>,
    topic_points: Vec<i32>,
    employer: Vec<u32>,
    group: Vec<u32>,
}

/// Largest weight the 32-bit block filter takes; rounds with larger or negative weights are
/// scored pair by pair with [`Encoded::evaluate`].
const FILTER_WEIGHT_LIMIT: i64 = 1 << 20;
/// Prices and floors are clamped to this range in the filter (see [`narrow`]).
const FILTER_CLAMP: i64 = 1 << 30;

impl Columns {
    /// Narrows the mentors at `order` to columns, or returns `None` when the round does not fit
    /// 32-bit lanes: more than 32 languages among its mentors, or negative or very large weights.
    fn new(encoded: &Encoded, order: &[u32]) -> Option<Self> {
        let w = &encoded.weights;
        let weights = [
            w.goal_coverage,
            w.level_gap,
            w.industry,
            w.region,
            w.breadth,
        ];
        if weights
            .iter()
            .any(|x| !(0..=FILTER_WEIGHT_LIMIT).contains(x))
            || i64::from(w.ideal_level_gap).abs() > FILTER_WEIGHT_LIMIT
        {
            return None;
        }
        let m = &encoded.mentors;
        let mut language_bit = vec![0u32; 64 * 3];
        let mut next = 0;
        for &j in order {
            for position in positions(&m.languages[j as usize]) {
                let slot = &mut language_bit[position];
                if *slot == 0 {
                    if next == 32 {
                        return None;
                    }
                    *slot = 1 << next;
                    next += 1;
                }
            }
        }
        let mut c = Self {
            language_bit,
            ..Self::default()
        };
        for &j in order {
            let j = j as usize;
            c.languages.push(c.language_bits(&m.languages[j]));
            c.formats.push(u32::from(m.formats[j]));
            c.topics.push(m.topics[j]);
            c.industries.push(m.industries[j]);
            if !(0..=64).contains(&m.experience[j]) || !(0..=64).contains(&m.topic_count[j]) {
                return None;
            }
            c.experience_points
                .push((w.breadth * m.experience[j]) as i32);
            c.topic_points.push((w.breadth * m.topic_count[j]) as i32);
            c.employer.push(m.employer[j]);
            c.group.push(m.group[j]);
        }
        Some(c)
    }

    /// Returns the score of a feasible pair of the mentee with the mentor at position `k`, given
    /// the level and region points `base` (as [`Encoded::evaluate`] scores it, without the
    /// pair bonus).
    fn score(&self, encoded: &Encoded, q: &Query<'_>, base: i64, k: usize) -> i64 {
        let w = &encoded.weights;
        let e = q.mentee;
        let (mut priority, mut covered) = (0u32, 0i64);
        for &(topic, p) in &e.goals {
            if self.topics[k] >> topic & 1 == 1 {
                priority += p;
                covered += 1;
            }
        }
        let coverage = w.goal_coverage * i64::from(priority) / i64::from(e.total_priority.max(1));
        let industry = if self.industries[k] & e.industry != 0 {
            q.industry_yes
        } else {
            q.industry_no
        };
        // The columns hold breadth points; the weights are not negative.
        let topics = (i64::from(self.topic_points[k]) - covered * w.breadth).min(5 * w.breadth);
        let breadth = i64::from(self.experience_points[k]) + topics;
        (base + coverage + industry + breadth).max(1)
    }

    /// Returns a language set in the round's numbering; languages no mentor speaks drop out.
    fn language_bits(&self, languages: &Languages) -> u32 {
        positions(languages).fold(0, |out, position| out | self.language_bit[position])
    }
}

/// Returns the positions (`64 × word + bit`) of the languages in a set.
fn positions(languages: &Languages) -> impl Iterator<Item = usize> + '_ {
    languages.iter().enumerate().flat_map(|(word, &bits)| {
        let mut rest = bits;
        std::iter::from_fn(move || {
            (rest != 0).then(|| {
                let bit = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                word * 64 + bit
            })
        })
    })
}

/// Clamps a price or floor to the filter's range. Scores in the filter stay far inside it, so a
/// clamped comparison never rejects a pair the exact comparison would accept.
fn narrow(x: i64) -> i32 {
    x.clamp(-FILTER_CLAMP, FILTER_CLAMP) as i32
}

/// Per-mentor prices a search subtracts from the score — the pricing check's mentor duals, or
/// the score a mentor's candidate list already guarantees — laid out for one index.
#[derive(Debug, Clone)]
pub struct Prices {
    /// Price of the mentor at each index position.
    positions: Vec<i64>,
    /// The same, minus the pair bonus, narrowed for the block filter.
    narrow: Vec<i32>,
    /// Lowest price in each block.
    blocks: Vec<i64>,
}

/// The mentors with a free place, as blocks of columns with summaries.
#[derive(Debug, Clone, Default)]
pub struct MentorIndex {
    /// Mentor index at each position.
    order: Vec<u32>,
    /// `None` when the round does not fit the block filter.
    columns: Option<Columns>,
    blocks: Vec<Block>,
    /// False when a weight is negative; the bounds then only rule out infeasible blocks.
    bounded: bool,
    /// The pair bonus every weight includes.
    bonus: i64,
    /// Most mentors per block.
    block: usize,
}

/// What a search needs of one mentee, computed once.
struct Query<'a> {
    mentee: &'a Mentee,
    /// Industry points when the mentor has the mentee's industry, and when not.
    industry_yes: i64,
    industry_no: i64,
    /// The block filter's view of the mentee, when the index has columns and the mentee fits.
    filter: Option<Filter>,
}

/// A mentee narrowed to 32-bit lanes for [`filter_block`].
struct Filter {
    checks: Feasibility,
    industry: u32,
    /// `(topic, points)`: coverage points of each goal alone, rounded up, so that their sum
    /// over the covered goals is never below the exact coverage points.
    goals: Vec<(u32, i32)>,
    industry_yes: i32,
    industry_no: i32,
    breadth: i32,
}

/// Most goals the block filter takes (validation allows five).
const FILTER_GOALS: usize = 8;

impl<'a> Query<'a> {
    fn new(encoded: &Encoded, mentee: &'a Mentee, columns: Option<&Columns>) -> Self {
        let w = &encoded.weights;
        let (industry_yes, industry_no) = match mentee.preference {
            tandem_proto::IndustryPreference::Same => (w.industry, 0),
            tandem_proto::IndustryPreference::Cross => (0, w.industry),
            tandem_proto::IndustryPreference::Unspecified => (w.industry / 4, 0),
        };
        let filter = columns
            .filter(|_| mentee.goals.len() <= FILTER_GOALS)
            .map(|c| {
                let total = i64::from(mentee.total_priority.max(1));
                let goals = (mentee.goals.iter())
                    .map(|&(topic, priority)| {
                        let points = w.goal_coverage * i64::from(priority);
                        let up =
                            points.div_euclid(total) + i64::from(points.rem_euclid(total) != 0);
                        // |points| ≤ |goal_coverage|: a goal's priority is part of the total.
                        (topic, up as i32)
                    })
                    .collect();
                Filter {
                    checks: Feasibility::new(c, mentee),
                    industry: mentee.industry,
                    goals,
                    industry_yes: industry_yes as i32,
                    industry_no: industry_no as i32,
                    breadth: w.breadth as i32,
                }
            });
        Self {
            mentee,
            industry_yes,
            industry_no,
            filter,
        }
    }
}

impl MentorIndex {
    /// Indexes the mentors of a round in blocks of at most [`BLOCK`].
    pub fn new(encoded: &Encoded) -> Self {
        Self::with_block(encoded, BLOCK)
    }

    /// Indexes the mentors of a round in blocks of at most `block` (at least 1).
    pub fn with_block(encoded: &Encoded, block: usize) -> Self {
        let all: Vec<u32> = (0..encoded.mentor_count() as u32).collect();
        Self::build(encoded, block, None, &all)
    }

    /// Indexes the mentors of a round for searches with these per-mentor `prices`: within a
    /// level and region, mentors are ordered by price, so that a block's lowest price is close
    /// to all of its mentors' and blocks of expensive mentors are skipped whole.
    pub fn for_prices(encoded: &Encoded, block: usize, prices: &[i64]) -> Self {
        let all: Vec<u32> = (0..encoded.mentor_count() as u32).collect();
        Self::build(encoded, block, Some(prices), &all)
    }

    /// Like [`MentorIndex::for_prices`], but indexes only `mentors`.
    pub fn for_prices_among(
        encoded: &Encoded,
        block: usize,
        prices: &[i64],
        mentors: &[u32],
    ) -> Self {
        Self::build(encoded, block, Some(prices), mentors)
    }

    fn build(encoded: &Encoded, block: usize, prices: Option<&[i64]>, mentors: &[u32]) -> Self {
        let block = block.clamp(1, BLOCK);
        let m = &encoded.mentors;
        let mut order: Vec<u32> = (mentors.iter().copied())
            .filter(|&j| m.capacity[j as usize] > 0)
            .collect();
        order.sort_by_key(|&j| {
            let j = j as usize;
            (
                m.level[j],
                m.region[j],
                prices.map_or(0, |p| p[j]),
                m.formats[j],
                m.topics[j],
                m.industries[j],
                m.languages[j],
                j,
            )
        });
        let columns = Columns::new(encoded, &order);
        let mut blocks: Vec<Block> = Vec::new();
        for (k, &j) in order.iter().enumerate() {
            let j = j as usize;
            let summary = Summary::of(encoded, j);
            match blocks.last_mut() {
                Some(b)
                    if b.level == m.level[j]
                        && b.region == m.region[j]
                        && (b.end - b.start) < block as u32 =>
                {
                    b.end += 1;
                    b.summary = b.summary.merge(&summary);
                }
                _ => blocks.push(Block {
                    start: k as u32,
                    end: k as u32 + 1,
                    level: m.level[j],
                    region: m.region[j],
                    summary,
                }),
            }
        }
        let w = &encoded.weights;
        Self {
            order,
            columns,
            blocks,
            bounded: [
                w.goal_coverage,
                w.level_gap,
                w.industry,
                w.region,
                w.breadth,
            ]
            .iter()
            .all(|&x| x >= 0),
            bonus: encoded.bonus,
            block,
        }
    }

    /// Returns the most mentors a block holds.
    pub fn block(&self) -> usize {
        self.block
    }

    /// Lays out per-mentor `prices` (indexed like the round's mentors) for searches.
    pub fn prices(&self, prices: &[i64]) -> Prices {
        let positions: Vec<i64> = self.order.iter().map(|&j| prices[j as usize]).collect();
        let blocks = (self.blocks.iter())
            .map(|b| {
                positions[b.start as usize..b.end as usize]
                    .iter()
                    .copied()
                    .min()
                    .unwrap_or(i64::MAX)
            })
            .collect();
        let narrow = (positions.iter())
            .map(|&p| narrow(p.saturating_sub(self.bonus)))
            .collect();
        Prices {
            positions,
            narrow,
            blocks,
        }
    }

    /// Returns the first block whose mentors stand above `level`: blocks are sorted by level,
    /// and a mentor must stand above the mentee (see [`MentorIndex::block_base`]).
    fn first_block_above(&self, level: i32) -> usize {
        self.blocks.partition_point(|b| b.level <= level)
    }

    /// Returns the level and region points of the mentee with the block's mentors, or `None`
    /// when the level or the region rule out every pair.
    fn block_base(&self, encoded: &Encoded, e: &Mentee, b: &Block) -> Option<i64> {
        let w = &encoded.weights;
        if b.level <= e.level
            || (e.needs_region && !(e.has_region && encoded.regions_meet(e.region, b.region)))
        {
            return None;
        }
        let off = i64::from((b.level - e.level - w.ideal_level_gap).abs());
        let level = (w.level_gap - off * w.level_gap / 3).max(0);
        let region = if !e.has_region {
            0
        } else if e.region == b.region {
            w.region
        } else if encoded.regions[e.region as usize].0 == encoded.regions[b.region as usize].0 {
            w.region / 2
        } else {
            0
        };
        Some(level + region)
    }

    /// Returns an upper bound on the weight of any pair of the mentee with the block's mentors,
    /// given the block's level and region points, or `None` if no such pair is feasible.
    fn bound(&self, encoded: &Encoded, q: &Query<'_>, s: &Summary, base: i64) -> Option<i64> {
        let e = q.mentee;
        if !share(&s.languages, &e.languages) || s.formats & u32::from(e.format) == 0 {
            return None;
        }
        let covered = s.topics & e.goal_mask;
        if covered == 0 {
            return None;
        }
        if !self.bounded {
            return Some(i64::MAX / 4);
        }
        let covered_priority: u32 = (e.goals.iter())
            .filter(|(topic, _)| covered >> topic & 1 == 1)
            .map(|g| g.1)
            .sum();
        let industry = if s.industries_any & e.industry != 0 {
            q.industry_yes
        } else {
            0
        }
        .max(if s.industries_all & e.industry == 0 {
            q.industry_no
        } else {
            0
        });
        let breadth = encoded.weights.breadth * s.breadth;
        let coverage = encoded.weights.goal_coverage * i64::from(covered_priority)
            / i64::from(e.total_priority.max(1));
        Some((base + coverage + industry + breadth).max(1) + encoded.bonus)
    }

    /// Visits every feasible pair of the mentee whose weight minus the mentor's price (0 without
    /// prices) exceeds `*floor`, calling `visit(mentor, weight, floor)`; `visit` may raise the
    /// floor to prune the rest of the search. Blocks with better bounds are searched first.
    pub fn search(
        &self,
        encoded: &Encoded,
        mentee: &Mentee,
        prices: Option<&Prices>,
        floor: &mut i64,
        mut visit: impl FnMut(u32, i64, &mut i64),
    ) {
        let q = Query::new(encoded, mentee, self.columns.as_ref());
        let mut open: Vec<(i64, i64, u32)> = Vec::new();
        let first = self.first_block_above(mentee.level);
        for (id, b) in self.blocks.iter().enumerate().skip(first) {
            let Some(base) = self.block_base(encoded, mentee, b) else {
                continue;
            };
            let Some(bound) = self.bound(encoded, &q, &b.summary, base) else {
                continue;
            };
            let bound = bound.saturating_sub(prices.map_or(0, |p| p.blocks[id]));
            if bound > *floor {
                open.push((bound, base, id as u32));
            }
        }
        // Best bound first; ties in index order, so the search is deterministic.
        open.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.2.cmp(&b.2)));
        let unpriced = [narrow(-self.bonus); BLOCK];
        let mut values = [0i32; BLOCK];
        for (bound, base, id) in open {
            if bound <= *floor {
                break;
            }
            let b = &self.blocks[id as usize];
            let range = b.start as usize..b.end as usize;
            let filter = (self.columns.as_ref().zip(q.filter.as_ref()))
                .filter(|_| base.abs() <= FILTER_WEIGHT_LIMIT * 4);
            let Some((columns, filter)) = filter else {
                for k in range {
                    self.visit_exact(encoded, mentee, k, prices, floor, &mut visit);
                }
                continue;
            };
            let narrow_prices =
                prices.map_or(&unpriced[..range.len()], |p| &p.narrow[range.clone()]);
            let best = filter_block(
                columns,
                range.clone(),
                filter,
                base as i32,
                narrow_prices,
                &mut values,
            );
            if best <= narrow(*floor) {
                continue;
            }
            for (k, &v) in range.zip(values.iter()) {
                if v <= narrow(*floor) {
                    continue;
                }
                // The filter checked every hard constraint but earlier proposals. The pair is
                // scored from the index's columns, which lie in index order, rather than by
                // `Encoded::evaluate` from the round's (in mentor order): 5–8 % less work.
                let j = self.order[k];
                if mentee.proposed_before.binary_search(&j).is_ok() {
                    continue;
                }
                let w = columns.score(encoded, &q, base, k) + self.bonus;
                debug_assert_eq!(Ok(w), encoded.evaluate(mentee, j as usize));
                let price = prices.map_or(0, |p| p.positions[k]);
                if w - price > *floor {
                    visit(j, w, floor);
                }
            }
        }
    }

    /// Returns the number of feasible pairs of the mentee with the indexed mentors (those with a
    /// free place). Blocks that level, region or their summary rule out are skipped; the rest
    /// are counted by a loop over their columns.
    pub fn count_feasible(&self, encoded: &Encoded, mentee: &Mentee) -> u64 {
        let Some(c) = self.columns.as_ref() else {
            return (self.order.iter())
                .filter(|&&j| encoded.evaluate(mentee, j as usize).is_ok())
                .count() as u64;
        };
        let f = Feasibility::new(c, mentee);
        let mut count = 0;
        for b in &self.blocks[self.first_block_above(mentee.level)..] {
            let s = &b.summary;
            if self.block_base(encoded, mentee, b).is_none()
                || !share(&s.languages, &mentee.languages)
                || s.formats & f.format == 0
                || s.topics & f.goal_mask == 0
            {
                continue;
            }
            count += count_block(c, b.start as usize..b.end as usize, &f);
        }
        // Pairs proposed before passed every check above but are not feasible.
        // (Mentors without a free place are not indexed.)
        let before = (mentee.proposed_before.iter()).filter(|&&j| {
            encoded.mentors.capacity[j as usize] > 0
                && encoded.evaluate(mentee, j as usize)
                    == Err(
                        tandem_domain::scoring::Infeasible::ProposedBefore as super::encoded::Stage
                    )
        });
        count - before.count() as u64
    }

    /// Scores the pair of the mentee with the mentor at position `k` exactly and visits it if it
    /// beats the floor.
    fn visit_exact(
        &self,
        encoded: &Encoded,
        mentee: &Mentee,
        k: usize,
        prices: Option<&Prices>,
        floor: &mut i64,
        visit: &mut impl FnMut(u32, i64, &mut i64),
    ) {
        let j = self.order[k];
        if let Ok(w) = encoded.evaluate(mentee, j as usize) {
            let price = prices.map_or(0, |p| p.positions[k]);
            if w - price > *floor {
                visit(j, w, floor);
            }
        }
    }
}

/// The hard constraints a block's mentors do not share, for [`count_block`].
struct Feasibility {
    languages: u32,
    format: u32,
    goal_mask: u32,
    employer: u32,
    group: u32,
}

impl Feasibility {
    fn new(c: &Columns, mentee: &Mentee) -> Self {
        Self {
            languages: c.language_bits(&mentee.languages),
            format: u32::from(mentee.format),
            goal_mask: mentee.goal_mask,
            employer: mentee.employer,
            group: mentee.group,
        }
    }

    /// Returns all ones when a mentor with these column values passes the checks, else zero.
    #[inline(always)]
    fn passes(&self, languages: u32, formats: u32, topics: u32, employer: u32, group: u32) -> i32 {
        mask(languages & self.languages != 0)
            & mask(formats & self.format != 0)
            & mask(topics & self.goal_mask != 0)
            & mask(employer != self.employer)
            & mask(employer != self.group)
            & mask(group != self.employer)
            & mask(group != self.group)
    }
}

/// Counts the mentors at `range` that pass the hard constraints the block does not decide.
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn count_block(c: &Columns, range: std::ops::Range<usize>, f: &Feasibility) -> u64 {
    let (s, t) = (range.start, range.end);
    let languages = &c.languages[s..t];
    let n = languages.len();
    let (formats, topics) = (&c.formats[s..s + n], &c.topics[s..s + n]);
    let (employer, group) = (&c.employer[s..s + n], &c.group[s..s + n]);
    let mut count = 0u32;
    for k in 0..n {
        let feasible = f.passes(languages[k], formats[k], topics[k], employer[k], group[k]);
        count += (feasible & 1) as u32;
    }
    u64::from(count)
}

/// Returns `yes` where `mask` is all ones and `no` where it is zero. Written with bit operations
/// rather than `if`, which the compiler vectorizes even for the baseline x86-64 instruction set.
#[inline(always)]
fn select(mask: i32, yes: i32, no: i32) -> i32 {
    (yes & mask) | (no & !mask)
}

/// Returns all ones for `true`, zero for `false`.
#[inline(always)]
fn mask(b: bool) -> i32 {
    -i32::from(b)
}

/// Scores the mentee with every mentor at `range` from above: writes, per mentor, its weight
/// without the pair bonus minus its narrowed price (`prices`, which has the bonus taken off), or
/// `i32::MIN` when a hard constraint other than earlier proposals rules the pair out; returns
/// the largest value. `base` holds the level and region points, which the block's mentors share.
///
/// The value is never below the exact weight minus price (coverage is rounded up per goal; see
/// [`narrow`] for the clamping), so a pair whose value does not beat the floor cannot beat it
/// exactly. The loops have no branches and run over 32-bit columns, which the compiler turns
/// into vector instructions (AVX2 where the processor has it, chosen at run time).
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn filter_block(
    c: &Columns,
    range: std::ops::Range<usize>,
    f: &Filter,
    base: i32,
    prices: &[i32],
    out: &mut [i32; BLOCK],
) -> i32 {
    let (s, t) = (range.start, range.end);
    let n = t - s;
    let languages = &c.languages[s..t];
    let formats = &c.formats[s..t];
    let topics = &c.topics[s..t];
    let industries = &c.industries[s..t];
    let experience = &c.experience_points[s..t];
    let topics_points = &c.topic_points[s..t];
    let employer = &c.employer[s..t];
    let group = &c.group[s..t];
    let prices = &prices[..n];
    let out = &mut out[..n];
    let mut coverage = [0i32; BLOCK];
    // Breadth points the covered goals take off the mentor's topic points.
    let mut covered = [0i32; BLOCK];
    let (coverage, covered) = (&mut coverage[..n], &mut covered[..n]);
    for &(topic, points) in &f.goals {
        for k in 0..n {
            let goal = mask((topics[k] >> topic) & 1 == 1);
            coverage[k] += points & goal;
            covered[k] += f.breadth & goal;
        }
    }
    let most_topic_points = 5 * f.breadth;
    let mut best = i32::MIN;
    for k in 0..n {
        let industry = select(
            mask(industries[k] & f.industry != 0),
            f.industry_yes,
            f.industry_no,
        );
        let extra = topics_points[k] - covered[k];
        let extra = select(mask(extra < most_topic_points), extra, most_topic_points);
        let score = base + coverage[k] + industry + experience[k] + extra;
        let score = select(mask(score >= 1), score, 1);
        let feasible =
            (f.checks).passes(languages[k], formats[k], topics[k], employer[k], group[k]);
        let value = select(feasible, score - prices[k], i32::MIN);
        out[k] = value;
        best = select(mask(value > best), value, best);
    }
    best
}
