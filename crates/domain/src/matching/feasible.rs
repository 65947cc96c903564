//! Counts the feasible pairs of a round without visiting them one by one.
//!
//! A round reports how many mentee–mentor pairs meet every hard constraint. Visiting all pairs
//! would cost more than the rest of the round, so mentors are grouped by the keys of the first
//! checks (languages, level, formats, region) and mentees by theirs; a group pair either passes
//! those checks for all its members or for none. Within a mentor group only the topic sets
//! matter, counted once per goal set. Pairs that pass all this but share an employer or group,
//! or were proposed before, are then found through the mentors' tokens and subtracted.

use std::collections::HashMap;

use super::encoded::{Encoded, FEASIBLE, Languages, Stage, share};
use crate::scoring::Infeasible;

/// Mentors with a free place that agree on the first checks.
struct MentorGroup {
    languages: Languages,
    level: i32,
    formats: u8,
    region: u32,
    /// Distinct topic sets and how many mentors have each.
    topics: Vec<(u32, u64)>,
}

/// Returns the number of feasible pairs. `furthest` is each mentee's furthest stage; mentees
/// that reached no feasible pair are skipped.
pub(super) fn count(encoded: &Encoded, furthest: &[Stage]) -> u64 {
    let m = &encoded.mentors;
    let mut groups: Vec<MentorGroup> = Vec::new();
    let mut group_of: HashMap<(Languages, i32, u8, u32), usize> = HashMap::new();
    let mut by_token: HashMap<u32, Vec<u32>> = HashMap::new();
    for j in (0..encoded.mentor_count()).filter(|&j| m.capacity[j] > 0) {
        let k = (m.languages[j], m.level[j], m.formats[j], m.region[j]);
        let g = *group_of.entry(k).or_insert_with(|| {
            groups.push(MentorGroup {
                languages: k.0,
                level: k.1,
                formats: k.2,
                region: k.3,
                topics: Vec::new(),
            });
            groups.len() - 1
        });
        let topics = &mut groups[g].topics;
        match topics.iter_mut().find(|(t, _)| *t == m.topics[j]) {
            Some(entry) => entry.1 += 1,
            None => topics.push((m.topics[j], 1)),
        }
        by_token.entry(m.employer[j]).or_default().push(j as u32);
        if m.group[j] != m.employer[j] {
            by_token.entry(m.group[j]).or_default().push(j as u32);
        }
    }

    // Mentees by the keys of the first checks, each with a count per goal set.
    type MenteeKey = (Languages, i32, u8, bool, u32);
    let mut classes: HashMap<MenteeKey, HashMap<u32, u64>> = HashMap::new();
    let mut conflicts = 0u64;
    let mut near: Vec<u32> = Vec::new();
    for (e, _) in (encoded.mentees.iter().zip(furthest)).filter(|(_, f)| **f == FEASIBLE) {
        let needs_region = e.needs_region;
        if needs_region && !e.has_region {
            // No mentor can meet such a mentee; it has no feasible pair to count.
            continue;
        }
        let key = (
            e.languages,
            e.level,
            e.format,
            needs_region,
            if needs_region { e.region } else { 0 },
        );
        *classes
            .entry(key)
            .or_default()
            .entry(e.goal_mask)
            .or_default() += 1;
        near.clear();
        for t in [e.employer, e.group] {
            near.extend(by_token.get(&t).into_iter().flatten());
        }
        near.extend(
            e.proposed_before
                .iter()
                .filter(|&&j| m.capacity[j as usize] > 0),
        );
        near.sort_unstable();
        near.dedup();
        conflicts += near
            .iter()
            .filter(|&&j| {
                matches!(
                    encoded.evaluate(e, j as usize),
                    Err(s) if s == Infeasible::SameEmployer as Stage
                        || s == Infeasible::ProposedBefore as Stage
                )
            })
            .count() as u64;
    }

    let mut covering: HashMap<(usize, u32), u64> = HashMap::new();
    let mut total = 0u64;
    for ((languages, level, format, needs_region, region), goal_sets) in &classes {
        for (g, group) in groups.iter().enumerate() {
            if !share(languages, &group.languages)
                || group.level <= *level
                || group.formats & format == 0
                || (*needs_region && !encoded.regions_meet(*region, group.region))
            {
                continue;
            }
            for (&goals, &mentees) in goal_sets {
                let mentors = *covering.entry((g, goals)).or_insert_with(|| {
                    (group.topics.iter())
                        .filter(|(t, _)| t & goals != 0)
                        .map(|(_, n)| n)
                        .sum()
                });
                total += mentees * mentors;
            }
        }
    }
    total.saturating_sub(conflicts)
}
