//! The rules of a tandem's life after the double opt-in: recording the goals and the cadence,
//! meetings, goal reviews, overdue meetings, the end and feedback.
//!
//! Every change is a function on the `Tandem` message that either applies the change and bumps
//! the version, or refuses with a [`LifecycleError`] and leaves the tandem as it was. The broker
//! (for the mentee's side and for what it learns from nodes) and the mentor's node (to check
//! its staff's entries before it keeps them) apply the same rules.

use std::collections::HashSet;

use tandem_proto::{
    CheckIn, EndReason, Feedback, Format, GoalReview, GoalReviewLine, ReviewPoint, Tandem,
    TandemGoal, TandemPlan, TandemSide, TandemStatus, Topic,
};

use crate::error::{FieldViolation, Violations};
pub use crate::time::DAY_MS;
/// Most goals of one tandem: those of the mentee.
pub use crate::validate::MAX_GOALS;
/// One month (a twelfth of the mean Gregorian year) in milliseconds.
pub const MONTH_MS: i64 = 2_629_746_000;
/// Meeting cadence bounds in days (every 2 to 6 weeks).
pub const CADENCE_DAYS: std::ops::RangeInclusive<u32> = 14..=42;
/// Programme length bounds in months.
pub const PROGRAMME_MONTHS: std::ops::RangeInclusive<u32> = 3..=12;
/// Self-assessment scale of goals.
pub const LEVELS: std::ops::RangeInclusive<u32> = 1..=5;
/// Meeting length bounds in minutes.
pub const DURATION_MINUTES: std::ops::RangeInclusive<u32> = 15..=480;
/// Most meetings one tandem keeps.
pub const MAX_CHECK_INS: usize = 400;
/// Longest goal description and feedback comment, in characters.
pub const MAX_DESCRIPTION: usize = 500;
pub const MAX_COMMENT: usize = 1000;
/// How far ahead a tandem may be planned to start.
pub const MAX_START_AHEAD_MS: i64 = 90 * DAY_MS;
/// Tolerance for clocks that run slightly apart when a meeting is dated "now".
const CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;
/// The final review is open from this long before the planned end.
const FINAL_REVIEW_WINDOW_MS: i64 = 30 * DAY_MS;

/// Why a change to a tandem was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleError {
    /// Fields of the request are wrong: every one of them.
    Invalid(Violations),
    /// The request is well-formed but the tandem is not in a state that allows it.
    State(String),
}

impl std::fmt::Display for LifecycleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(e) => e.fmt(f),
            Self::State(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for LifecycleError {}

impl From<Violations> for LifecycleError {
    fn from(e: Violations) -> Self {
        Self::Invalid(e)
    }
}

impl From<FieldViolation> for LifecycleError {
    fn from(e: FieldViolation) -> Self {
        Self::Invalid(e.into())
    }
}

type Result<T> = std::result::Result<T, LifecycleError>;

fn invalid(field: &str, reason: impl Into<String>) -> LifecycleError {
    LifecycleError::Invalid(Violations::one(field, reason))
}

fn state(msg: impl Into<String>) -> LifecycleError {
    LifecycleError::State(msg.into())
}

/// The network's lifecycle settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Days beyond the cadence before a meeting counts as overdue.
    pub grace_days: u32,
    /// A tandem ended early within this many days of its start sends the mentee back to
    /// waiting for another mentor.
    pub rematch_window_days: u32,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            grace_days: 7,
            rematch_window_days: 42,
        }
    }
}

fn status_of(t: &Tandem) -> TandemStatus {
    TandemStatus::try_from(t.status).unwrap_or(TandemStatus::Unspecified)
}

/// Returns true once the tandem completed or ended early.
pub fn is_ended(t: &Tandem) -> bool {
    matches!(
        status_of(t),
        TandemStatus::Completed | TandemStatus::EndedEarly
    )
}

fn status_name(status: TandemStatus) -> &'static str {
    match status {
        TandemStatus::Unspecified => "unknown",
        TandemStatus::Starting => "starting (goals not recorded yet)",
        TandemStatus::Active => "active",
        TandemStatus::Completed => "completed",
        TandemStatus::EndedEarly => "ended early",
    }
}

/// Returns a new tandem formed at `formed_at_ms`, waiting for its goals and cadence.
pub fn form(
    tandem_id: &str,
    mentee_id: &str,
    node_id: &str,
    pseudonym: &str,
    formed_at_ms: i64,
    rules: Rules,
) -> Tandem {
    Tandem {
        tandem_id: tandem_id.to_owned(),
        mentee_id: mentee_id.to_owned(),
        node_id: node_id.to_owned(),
        pseudonym: pseudonym.to_owned(),
        status: TandemStatus::Starting as i32,
        formed_at_ms,
        grace_days: rules.grace_days,
        version: 1,
        ..Tandem::default()
    }
}

fn level(field: &str, value: u32) -> std::result::Result<(), FieldViolation> {
    if LEVELS.contains(&value) {
        Ok(())
    } else {
        Err(FieldViolation::new(field, "must be 1 to 5"))
    }
}

/// Checks a plan's goals: 1 to 5 with distinct topics of the taxonomy, each with a baseline
/// and a higher target on the 1 to 5 scale. Records one violation per bad field of each goal.
fn check_goals(found: &mut Violations, goals: &[TandemGoal]) {
    if goals.is_empty() || goals.len() > MAX_GOALS {
        found.add("plan.goals", format!("must hold 1 to {MAX_GOALS} goals"));
        return;
    }
    let mut topics = HashSet::new();
    for (i, g) in goals.iter().enumerate() {
        let field = |name: &str| format!("plan.goals[{i}].{name}");
        match Topic::try_from(g.topic) {
            Ok(Topic::Unspecified) | Err(_) => {
                found.add(field("topic"), "must be a topic of the taxonomy");
            }
            Ok(_) if !topics.insert(g.topic) => {
                found.add(field("topic"), "appears twice; topics must be distinct");
            }
            Ok(_) => {}
        }
        if g.description.chars().count() > MAX_DESCRIPTION {
            found.add(
                field("description"),
                format!("longer than {MAX_DESCRIPTION} characters"),
            );
        }
        let baseline = found.check(level(&field("baseline"), g.baseline));
        if found.check(level(&field("target"), g.target)).is_some()
            && baseline.is_some()
            && g.target <= g.baseline
        {
            found.add(field("target"), "must be above the baseline");
        }
    }
}

fn touch(t: &mut Tandem) {
    t.version += 1;
}

/// Records the plan: goals, cadence and programme length. The tandem becomes active.
pub fn start(t: &mut Tandem, plan: &TandemPlan, now: i64) -> Result<()> {
    if status_of(t) != TandemStatus::Starting {
        return Err(state(format!(
            "the tandem is {}; goals and cadence are recorded once, when it starts",
            status_name(status_of(t))
        )));
    }
    let mut found = Violations::new();
    if !CADENCE_DAYS.contains(&plan.cadence_days) {
        found.add(
            "plan.cadence_days",
            "must be 14 to 42 days (every 2 to 6 weeks)",
        );
    }
    if !PROGRAMME_MONTHS.contains(&plan.programme_months) {
        found.add("plan.programme_months", "must be 3 to 12 months");
    }
    let starts = if plan.starts_at_ms == 0 {
        now
    } else {
        plan.starts_at_ms
    };
    if starts < t.formed_at_ms.saturating_sub(DAY_MS) {
        found.add("plan.starts_at_ms", "is before both sides said yes");
    } else if starts > now.saturating_add(MAX_START_AHEAD_MS) {
        found.add("plan.starts_at_ms", "is more than 90 days ahead");
    }
    check_goals(&mut found, &plan.goals);
    found.into_result()?;
    t.started_at_ms = starts;
    t.cadence_days = plan.cadence_days;
    t.programme_months = plan.programme_months;
    t.planned_end_at_ms = starts.saturating_add(i64::from(plan.programme_months) * MONTH_MS);
    t.goals = plan
        .goals
        .iter()
        .map(|g| TandemGoal {
            current: g.baseline,
            ..g.clone()
        })
        .collect();
    t.status = TandemStatus::Active as i32;
    t.next_meeting_due_at_ms = due_after(t, starts);
    touch(t);
    Ok(())
}

fn due_after(t: &Tandem, from: i64) -> i64 {
    from.saturating_add(i64::from(t.cadence_days + t.grace_days) * DAY_MS)
}

/// Records a meeting held, with progress per goal, on behalf of `side`.
pub fn check_in(t: &mut Tandem, c: &CheckIn, side: TandemSide, now: i64) -> Result<()> {
    let status = status_of(t);
    if status != TandemStatus::Active {
        return Err(state(format!(
            "the tandem is {}; meetings are recorded only while it is active",
            status_name(status)
        )));
    }
    if t.check_ins.len() >= MAX_CHECK_INS {
        return Err(state(format!(
            "the tandem already holds {MAX_CHECK_INS} meetings"
        )));
    }
    let mut found = Violations::new();
    let latest = t.check_ins.last().map(|last| last.met_at_ms);
    if c.met_at_ms < t.started_at_ms {
        found.add("check_in.met_at_ms", "is before the tandem started");
    } else if c.met_at_ms > now.saturating_add(CLOCK_SKEW_MS) {
        found.add("check_in.met_at_ms", "is in the future");
    } else if latest.is_some_and(|latest| c.met_at_ms < latest) {
        found.add(
            "check_in.met_at_ms",
            "is before the latest recorded meeting",
        );
    }
    if !DURATION_MINUTES.contains(&c.duration_minutes) {
        found.add("check_in.duration_minutes", "must be 15 to 480 minutes");
    }
    if !matches!(
        Format::try_from(c.format),
        Ok(Format::InPerson | Format::Remote | Format::Hybrid)
    ) {
        found.add("check_in.format", "must be IN_PERSON, REMOTE or HYBRID");
    }
    let mut seen = HashSet::new();
    for (i, p) in c.progress.iter().enumerate() {
        let index = usize::try_from(p.goal).unwrap_or(usize::MAX);
        if index >= t.goals.len() {
            found.add(
                format!("check_in.progress[{i}].goal"),
                format!(
                    "the tandem has {} goals (0 to {})",
                    t.goals.len(),
                    t.goals.len().saturating_sub(1)
                ),
            );
        } else if !seen.insert(index) {
            found.add(format!("check_in.progress[{i}].goal"), "appears twice");
        }
        found.check(level(&format!("check_in.progress[{i}].level"), p.level));
    }
    found.into_result()?;
    for p in &c.progress {
        if let Some(goal) = usize::try_from(p.goal)
            .ok()
            .and_then(|i| t.goals.get_mut(i))
        {
            goal.current = p.level;
        }
    }
    t.check_ins.push(CheckIn {
        recorded_by: side as i32,
        recorded_at_ms: now,
        ..c.clone()
    });
    t.next_meeting_due_at_ms = due_after(t, c.met_at_ms);
    touch(t);
    Ok(())
}

/// Share of the way from baseline to target, in percent (0 to 100).
pub fn goal_attainment(g: &TandemGoal) -> u32 {
    let span = i64::from(g.target) - i64::from(g.baseline);
    if span <= 0 {
        return 100;
    }
    let covered = (i64::from(g.current) - i64::from(g.baseline)).clamp(0, span);
    u32::try_from(covered * 100 / span).unwrap_or(100)
}

/// Mean attainment over the tandem's goals; `None` without goals.
pub fn attainment(t: &Tandem) -> Option<u32> {
    if t.goals.is_empty() {
        return None;
    }
    let sum: u64 = t.goals.iter().map(|g| u64::from(goal_attainment(g))).sum();
    u32::try_from(sum / t.goals.len() as u64).ok()
}

/// Holds a goal review at `point`: each goal's current level against baseline and target.
pub fn review(t: &mut Tandem, point: ReviewPoint, now: i64) -> Result<()> {
    let status = status_of(t);
    if matches!(status, TandemStatus::Starting | TandemStatus::Unspecified) {
        return Err(state(
            "the tandem has no goals yet; record them when it starts",
        ));
    }
    let opens = match point {
        ReviewPoint::Midpoint => t.started_at_ms + (t.planned_end_at_ms - t.started_at_ms) / 2,
        ReviewPoint::Final if is_ended(t) => t.started_at_ms,
        ReviewPoint::Final => t.planned_end_at_ms - FINAL_REVIEW_WINDOW_MS,
        ReviewPoint::Unspecified => {
            return Err(invalid("point", "must be MIDPOINT or FINAL"));
        }
    };
    if now < opens {
        return Err(state(format!(
            "the {} review opens on day {} of the programme",
            if point == ReviewPoint::Midpoint {
                "midpoint"
            } else {
                "final"
            },
            (opens - t.started_at_ms) / DAY_MS
        )));
    }
    if t.reviews.iter().any(|r| r.point == point as i32) {
        return Err(state("this review was already held"));
    }
    let goals: Vec<GoalReviewLine> = t
        .goals
        .iter()
        .enumerate()
        .map(|(i, g)| GoalReviewLine {
            goal: u32::try_from(i).unwrap_or(u32::MAX),
            topic: g.topic,
            baseline: g.baseline,
            target: g.target,
            current: g.current,
            attainment_percent: goal_attainment(g),
        })
        .collect();
    t.reviews.push(GoalReview {
        point: point as i32,
        reviewed_at_ms: now,
        goals,
        attainment_percent: attainment(t).unwrap_or(0),
    });
    touch(t);
    Ok(())
}

/// What ending a tandem means for the mentee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// The mentee goes back to waiting for another mentor.
    pub rematch: bool,
}

/// Ends the tandem on behalf of `side`: completed from the planned end on, or early.
pub fn end(
    t: &mut Tandem,
    reason: EndReason,
    side: TandemSide,
    now: i64,
    rules: Rules,
) -> Result<Ended> {
    let status = status_of(t);
    if !matches!(status, TandemStatus::Starting | TandemStatus::Active) {
        return Err(state(format!(
            "the tandem is already {}",
            status_name(status)
        )));
    }
    let completed = match reason {
        EndReason::Unspecified => {
            return Err(invalid(
                "reason",
                "is required: PROGRAMME_COMPLETED or why the tandem ends early",
            ));
        }
        EndReason::ProgrammeCompleted => {
            if status != TandemStatus::Active || now < t.planned_end_at_ms {
                return Err(state(
                    "the programme has not reached its planned end; end it early with a reason",
                ));
            }
            true
        }
        _ => false,
    };
    let began = if t.started_at_ms > 0 {
        t.started_at_ms
    } else {
        t.formed_at_ms
    };
    let rematch =
        !completed && now < began.saturating_add(i64::from(rules.rematch_window_days) * DAY_MS);
    t.status = if completed {
        TandemStatus::Completed
    } else {
        TandemStatus::EndedEarly
    } as i32;
    t.ended_at_ms = now;
    t.ended_by = side as i32;
    t.end_reason = reason as i32;
    t.next_meeting_due_at_ms = 0;
    t.mentee_rematched = rematch;
    touch(t);
    Ok(Ended { rematch })
}

/// Records one side's feedback on an ended tandem, once.
pub fn feedback(t: &mut Tandem, f: &Feedback, side: TandemSide, now: i64) -> Result<()> {
    if !is_ended(t) {
        return Err(state("feedback is given once the tandem has ended"));
    }
    let mut found = Violations::new();
    found.check(level("feedback.rating", f.rating));
    if f.comment.chars().count() > MAX_COMMENT {
        found.add(
            "feedback.comment",
            format!("longer than {MAX_COMMENT} characters"),
        );
    }
    found.into_result()?;
    let slot = match side {
        TandemSide::Mentee => &mut t.mentee_feedback,
        TandemSide::Mentor => &mut t.mentor_feedback,
        TandemSide::Unspecified => return Err(state("feedback needs a side")),
    };
    if slot.is_some() {
        return Err(state("this side already gave its feedback"));
    }
    *slot = Some(Feedback {
        given_at_ms: now,
        ..f.clone()
    });
    touch(t);
    Ok(())
}

/// Returns true when the tandem is active and its next meeting is overdue at `now`.
pub fn is_overdue(t: &Tandem, now: i64) -> bool {
    status_of(t) == TandemStatus::Active && now > t.next_meeting_due_at_ms
}

/// Returns the tandem as a reader sees it at `now`, with the overdue flag evaluated.
pub fn as_of(mut t: Tandem, now: i64) -> Tandem {
    t.overdue = is_overdue(&t, now);
    t
}

/// Returns the copy the mentor's node may hold: no mentee id, no goal descriptions and no
/// comment of the mentee.
pub fn for_node(t: &Tandem) -> Tandem {
    let mut copy = t.clone();
    copy.mentee_id.clear();
    copy.overdue = false;
    for g in &mut copy.goals {
        g.description.clear();
    }
    if let Some(f) = copy.mentee_feedback.as_mut() {
        f.comment.clear();
    }
    copy
}

#[cfg(test)]
mod tests;
