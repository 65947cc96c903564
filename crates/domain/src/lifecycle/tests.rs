use tandem_proto::{GoalProgress, Topic};

use super::*;

const T0: i64 = 1_800_000_000_000;

fn goal(topic: Topic, baseline: u32, target: u32) -> TandemGoal {
    TandemGoal {
        topic: topic as i32,
        description: "lead a team of five".to_owned(),
        baseline,
        target,
        current: 0,
    }
}

fn plan() -> TandemPlan {
    TandemPlan {
        starts_at_ms: 0,
        cadence_days: 28,
        programme_months: 6,
        goals: vec![goal(Topic::Leadership, 2, 4), goal(Topic::Financing, 1, 3)],
    }
}

fn active() -> Tandem {
    let mut t = form("p1", "m1", "node-a", "ps", T0, Rules::default());
    start(&mut t, &plan(), T0).expect("plan is valid");
    t
}

fn meeting(at: i64, progress: &[(u32, u32)]) -> CheckIn {
    CheckIn {
        met_at_ms: at,
        duration_minutes: 60,
        format: Format::Remote as i32,
        progress: progress
            .iter()
            .map(|&(goal, level)| GoalProgress { goal, level })
            .collect(),
        ..CheckIn::default()
    }
}

/// Returns the wrong fields of a refused change, joined by ", ": just the field when it is the
/// only one.
fn field_of(e: LifecycleError) -> String {
    match e {
        LifecycleError::Invalid(v) => v.fields().join(", "),
        LifecycleError::State(s) => panic!("expected a field error, got state error {s}"),
    }
}

#[test]
fn starting_records_goals_cadence_and_the_first_due_date() {
    let t = active();
    assert_eq!(t.status, TandemStatus::Active as i32);
    assert_eq!(t.started_at_ms, T0);
    assert_eq!(t.planned_end_at_ms, T0 + 6 * MONTH_MS);
    assert_eq!(t.next_meeting_due_at_ms, T0 + 35 * DAY_MS);
    assert_eq!(t.goals[0].current, 2, "current starts at the baseline");
    assert_eq!(t.version, 2);
}

#[test]
fn a_bad_plan_names_the_field_and_changes_nothing() {
    let fresh = form("p1", "m1", "node-a", "ps", T0, Rules::default());
    type Change = Box<dyn Fn(&mut TandemPlan)>;
    let cases: Vec<(Change, &str)> = vec![
        (Box::new(|p| p.cadence_days = 7), "plan.cadence_days"),
        (
            Box::new(|p| p.programme_months = 24),
            "plan.programme_months",
        ),
        (Box::new(|p| p.goals.clear()), "plan.goals"),
        (
            Box::new(|p| p.goals[1].topic = p.goals[0].topic),
            "plan.goals[1].topic",
        ),
        (
            Box::new(|p| p.goals[0].baseline = 0),
            "plan.goals[0].baseline",
        ),
        (Box::new(|p| p.goals[0].target = 2), "plan.goals[0].target"),
        (Box::new(|p| p.goals[1].target = 6), "plan.goals[1].target"),
        (
            Box::new(|p| p.goals[0].description = "x".repeat(501)),
            "plan.goals[0].description",
        ),
        (
            Box::new(|p| p.starts_at_ms = T0 - 3 * DAY_MS),
            "plan.starts_at_ms",
        ),
        (
            Box::new(|p| p.starts_at_ms = T0 + 100 * DAY_MS),
            "plan.starts_at_ms",
        ),
    ];
    for (change, field) in cases {
        let mut t = fresh.clone();
        let mut p = plan();
        change(&mut p);
        let err = start(&mut t, &p, T0).expect_err(field);
        assert_eq!(field_of(err), field);
        assert_eq!(t, fresh, "a refused plan leaves the tandem unchanged");
    }
}

#[test]
fn a_plan_with_several_problems_names_them_all() {
    let mut t = form("p1", "m1", "node-a", "ps", T0, Rules::default());
    let mut p = plan();
    p.cadence_days = 7;
    p.starts_at_ms = T0 + 100 * DAY_MS;
    p.goals[0].baseline = 0;
    p.goals[1].topic = p.goals[0].topic;
    p.goals[1].target = 1;
    let err = start(&mut t, &p, T0).expect_err("several problems");
    assert_eq!(
        field_of(err.clone()),
        "plan.cadence_days, plan.starts_at_ms, plan.goals[0].baseline, plan.goals[1].topic, \
         plan.goals[1].target"
    );
    assert!(
        err.to_string()
            .contains("plan.goals[1].target: must be above the baseline"),
        "{err}"
    );
}

#[test]
fn a_check_in_with_several_problems_names_them_all() {
    let mut t = active();
    let c = CheckIn {
        duration_minutes: 5,
        format: 0,
        ..meeting(T0 - DAY_MS, &[(0, 3), (0, 9), (7, 2)])
    };
    let err = check_in(&mut t, &c, TandemSide::Mentee, T0).expect_err("several problems");
    assert_eq!(
        field_of(err),
        "check_in.met_at_ms, check_in.duration_minutes, check_in.format, \
         check_in.progress[1].goal, check_in.progress[1].level, check_in.progress[2].goal"
    );
}

#[test]
fn the_plan_is_recorded_once() {
    let mut t = active();
    assert!(matches!(
        start(&mut t, &plan(), T0),
        Err(LifecycleError::State(_))
    ));
}

#[test]
fn check_ins_move_progress_and_the_due_date() {
    let mut t = active();
    check_in(
        &mut t,
        &meeting(T0 + 20 * DAY_MS, &[(0, 3)]),
        TandemSide::Mentee,
        T0 + 21 * DAY_MS,
    )
    .expect("valid meeting");
    assert_eq!(t.goals[0].current, 3);
    assert_eq!(t.goals[1].current, 1);
    assert_eq!(t.next_meeting_due_at_ms, T0 + 55 * DAY_MS);
    assert_eq!(t.check_ins[0].recorded_by, TandemSide::Mentee as i32);
    assert_eq!(attainment(&t), Some(25));
}

#[test]
fn check_ins_are_refused_out_of_order_or_out_of_range() {
    let mut t = active();
    let now = T0 + 30 * DAY_MS;
    check_in(
        &mut t,
        &meeting(T0 + 20 * DAY_MS, &[]),
        TandemSide::Mentor,
        now,
    )
    .expect("valid");
    let before = t.clone();
    let bad = [
        (meeting(T0 - DAY_MS, &[]), "check_in.met_at_ms"),
        (meeting(now + DAY_MS, &[]), "check_in.met_at_ms"),
        (meeting(T0 + 10 * DAY_MS, &[]), "check_in.met_at_ms"),
        (meeting(now, &[(2, 3)]), "check_in.progress[0].goal"),
        (meeting(now, &[(0, 3), (0, 4)]), "check_in.progress[1].goal"),
        (meeting(now, &[(1, 6)]), "check_in.progress[0].level"),
        (
            CheckIn {
                duration_minutes: 5,
                ..meeting(now, &[])
            },
            "check_in.duration_minutes",
        ),
        (
            CheckIn {
                format: 0,
                ..meeting(now, &[])
            },
            "check_in.format",
        ),
    ];
    for (c, field) in bad {
        let err = check_in(&mut t, &c, TandemSide::Mentee, now).expect_err(field);
        assert_eq!(field_of(err), field);
        assert_eq!(t, before);
    }
}

#[test]
fn no_check_in_before_the_plan_or_after_the_end() {
    let mut fresh = form("p1", "m1", "node-a", "ps", T0, Rules::default());
    assert!(matches!(
        check_in(&mut fresh, &meeting(T0, &[]), TandemSide::Mentee, T0),
        Err(LifecycleError::State(_))
    ));
    let mut t = active();
    end(
        &mut t,
        EndReason::NoTime,
        TandemSide::Mentor,
        T0 + 100 * DAY_MS,
        Rules::default(),
    )
    .expect("early end");
    assert!(matches!(
        check_in(
            &mut t,
            &meeting(T0 + 90 * DAY_MS, &[]),
            TandemSide::Mentee,
            T0 + 100 * DAY_MS
        ),
        Err(LifecycleError::State(_))
    ));
}

#[test]
fn overdue_after_cadence_plus_grace_and_cleared_by_a_meeting() {
    let mut t = active();
    assert!(!is_overdue(&t, T0 + 35 * DAY_MS));
    assert!(is_overdue(&t, T0 + 36 * DAY_MS));
    check_in(
        &mut t,
        &meeting(T0 + 36 * DAY_MS, &[]),
        TandemSide::Mentor,
        T0 + 36 * DAY_MS,
    )
    .expect("valid");
    assert!(!is_overdue(&t, T0 + 36 * DAY_MS));
    assert!(as_of(t, T0 + 72 * DAY_MS).overdue);
}

#[test]
fn reviews_open_at_their_points_and_compare_with_baseline_and_target() {
    let mut t = active();
    assert!(matches!(
        review(&mut t, ReviewPoint::Midpoint, T0 + 30 * DAY_MS),
        Err(LifecycleError::State(_))
    ));
    check_in(
        &mut t,
        &meeting(T0 + 80 * DAY_MS, &[(0, 4), (1, 2)]),
        TandemSide::Mentee,
        T0 + 95 * DAY_MS,
    )
    .expect("valid");
    review(&mut t, ReviewPoint::Midpoint, T0 + 95 * DAY_MS).expect("midpoint is open");
    let r = &t.reviews[0];
    assert_eq!(r.goals[0].attainment_percent, 100);
    assert_eq!(r.goals[1].attainment_percent, 50);
    assert_eq!(r.attainment_percent, 75);
    assert!(matches!(
        review(&mut t, ReviewPoint::Midpoint, T0 + 96 * DAY_MS),
        Err(LifecycleError::State(_))
    ));
    assert!(matches!(
        review(&mut t, ReviewPoint::Final, T0 + 96 * DAY_MS),
        Err(LifecycleError::State(_))
    ));
    let final_opens = t.planned_end_at_ms - DAY_MS;
    review(&mut t, ReviewPoint::Final, final_opens).expect("final is open");
}

#[test]
fn completion_only_from_the_planned_end() {
    let mut t = active();
    assert!(matches!(
        end(
            &mut t,
            EndReason::ProgrammeCompleted,
            TandemSide::Mentee,
            T0 + DAY_MS,
            Rules::default()
        ),
        Err(LifecycleError::State(_))
    ));
    let planned_end = t.planned_end_at_ms;
    let done = end(
        &mut t,
        EndReason::ProgrammeCompleted,
        TandemSide::Mentee,
        planned_end,
        Rules::default(),
    )
    .expect("at the planned end");
    assert!(!done.rematch);
    assert_eq!(t.status, TandemStatus::Completed as i32);
    assert!(!is_overdue(&t, t.planned_end_at_ms + 400 * DAY_MS));
}

#[test]
fn an_early_end_in_the_first_weeks_rematches() {
    let rules = Rules::default();
    let mut t = active();
    let e = end(
        &mut t,
        EndReason::Mismatch,
        TandemSide::Mentor,
        T0 + 20 * DAY_MS,
        rules,
    )
    .expect("early end");
    assert!(e.rematch && t.mentee_rematched);
    assert_eq!(t.status, TandemStatus::EndedEarly as i32);
    let mut late = active();
    let e = end(
        &mut late,
        EndReason::NoTime,
        TandemSide::Mentee,
        T0 + 60 * DAY_MS,
        rules,
    )
    .expect("early end");
    assert!(!e.rematch);
    let mut t2 = active();
    assert_eq!(
        field_of(
            end(
                &mut t2,
                EndReason::Unspecified,
                TandemSide::Mentee,
                T0,
                rules
            )
            .expect_err("no reason")
        ),
        "reason"
    );
}

#[test]
fn feedback_once_per_side_after_the_end() {
    let mut t = active();
    let f = Feedback {
        rating: 5,
        comment: "very helpful".to_owned(),
        given_at_ms: 0,
    };
    assert!(matches!(
        feedback(&mut t, &f, TandemSide::Mentee, T0),
        Err(LifecycleError::State(_))
    ));
    end(
        &mut t,
        EndReason::GoalsReached,
        TandemSide::Mentee,
        T0 + 100 * DAY_MS,
        Rules::default(),
    )
    .expect("end");
    feedback(&mut t, &f, TandemSide::Mentee, T0 + 101 * DAY_MS).expect("mentee feedback");
    feedback(
        &mut t,
        &Feedback {
            rating: 4,
            ..Feedback::default()
        },
        TandemSide::Mentor,
        T0 + 101 * DAY_MS,
    )
    .expect("mentor feedback");
    assert!(matches!(
        feedback(&mut t, &f, TandemSide::Mentee, T0),
        Err(LifecycleError::State(_))
    ));
    let bad = Feedback {
        rating: 0,
        ..Feedback::default()
    };
    let mut t3 = t.clone();
    t3.mentee_feedback = None;
    assert_eq!(
        field_of(feedback(&mut t3, &bad, TandemSide::Mentee, T0).expect_err("rating")),
        "feedback.rating"
    );
}

#[test]
fn the_node_copy_carries_no_mentee_free_text() {
    let mut t = active();
    end(
        &mut t,
        EndReason::GoalsReached,
        TandemSide::Mentee,
        T0 + 100 * DAY_MS,
        Rules::default(),
    )
    .expect("end");
    let f = Feedback {
        rating: 5,
        comment: "private".to_owned(),
        given_at_ms: 0,
    };
    feedback(&mut t, &f, TandemSide::Mentee, T0 + 100 * DAY_MS).expect("feedback");
    let copy = for_node(&t);
    assert!(copy.mentee_id.is_empty());
    assert!(copy.goals.iter().all(|g| g.description.is_empty()));
    assert_eq!(
        copy.mentee_feedback.as_ref().map(|f| f.comment.as_str()),
        Some("")
    );
    assert_eq!(copy.mentee_feedback.map(|f| f.rating), Some(5));
}
