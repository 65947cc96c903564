//! A tandem's life through the real gRPC APIs, with one clock the test moves: the company
//! records goals and cadence, both sides record meetings (the mentor's at the node, picked up
//! by the broker's sync), a missed meeting raises the overdue flag for the company, the node
//! and the operator, a check-in clears it, the goals are reviewed, the programme completes with
//! feedback from both sides, and the mentor's place is free again.

use tandem_e2e::{TestClock, TestFederation, mentee, mentor, start_with_clock, submission};
use tandem_proto::{
    CheckIn, CompanyDecision, CreateMentorRequest, EndReason, EndTandemRequest, Feedback, Format,
    GetMenteeRequest, GetMentorRequest, GetNetworkStatsRequest, GetTandemRequest,
    GiveFeedbackRequest, GoalProgress, ListAuditEventsRequest, ListProposalsRequest,
    ListTandemsRequest, MenteeStatus, MentorDecision, NetworkStats, RecordCheckInRequest,
    RecordDecisionRequest, RespondToProposalRequest, ReviewGoalsRequest, ReviewPoint,
    RunMatchingRoundRequest, StartTandemRequest, SyncNodesRequest, Tandem, TandemGoal, TandemPlan,
    TandemSide, TandemStatus, Topic,
};
use tonic::Code;

const DAY_MS: i64 = 86_400_000;

/// Submits acme's mentee, matches it with the chamber's only mentor and has both say yes.
/// Returns the mentee id, the tandem id and the mentor id.
async fn form_tandem(f: &mut TestFederation) -> anyhow::Result<(String, String, String)> {
    let created = f.admins[0]
        .create_mentor(CreateMentorRequest {
            mentor: Some(mentor("Erika Berg", "HRB 1 München")),
        })
        .await?
        .into_inner();
    let m = f
        .mentees
        .submit_mentee(f.as_company("acme", submission("k1", mentee()))?)
        .await?
        .into_inner();
    f.operator.sync_nodes(SyncNodesRequest::default()).await?;
    f.operator
        .run_matching_round(RunMatchingRoundRequest {})
        .await?;
    f.settle().await?;
    let proposal = f
        .mentees
        .list_proposals(f.as_company(
            "acme",
            ListProposalsRequest {
                mentee_id: m.mentee_id.clone(),
            },
        )?)
        .await?
        .into_inner()
        .proposals
        .remove(0);
    f.admins[0]
        .record_decision(RecordDecisionRequest {
            introduction_id: proposal.proposal_id.clone(),
            decision: MentorDecision::Accepted as i32,
        })
        .await?;
    f.operator.sync_nodes(SyncNodesRequest::default()).await?;
    f.mentees
        .respond_to_proposal(f.as_company(
            "acme",
            RespondToProposalRequest {
                proposal_id: proposal.proposal_id.clone(),
                decision: CompanyDecision::Confirmed as i32,
            },
        )?)
        .await?;
    // The node gets its copy of the new tandem.
    f.settle().await?;
    Ok((m.mentee_id, proposal.proposal_id, created.id))
}

fn plan() -> TandemPlan {
    let goal = |topic: Topic, baseline, target, description: &str| TandemGoal {
        topic: topic as i32,
        description: description.to_owned(),
        baseline,
        target,
        current: 0,
    };
    TandemPlan {
        starts_at_ms: 0,
        cadence_days: 28,
        programme_months: 6,
        goals: vec![
            goal(Topic::Leadership, 2, 4, "lead my first team of five"),
            goal(Topic::Financing, 1, 3, "prepare a seed round"),
        ],
    }
}

fn meeting(at: i64, progress: &[(u32, u32)]) -> CheckIn {
    CheckIn {
        met_at_ms: at,
        duration_minutes: 90,
        format: Format::Remote as i32,
        progress: progress
            .iter()
            .map(|&(goal, level)| GoalProgress { goal, level })
            .collect(),
        ..CheckIn::default()
    }
}

async fn company_view(f: &mut TestFederation, id: &str) -> anyhow::Result<Tandem> {
    Ok(f.mentees
        .get_tandem(f.as_company(
            "acme",
            GetTandemRequest {
                tandem_id: id.to_owned(),
            },
        )?)
        .await?
        .into_inner())
}

/// Returns the node's copy of the mentor's tandem once the broker's outbox settled.
async fn node_view(f: &mut TestFederation, mentor_id: &str) -> anyhow::Result<Tandem> {
    f.settle().await?;
    let mut tandems = f.admins[0]
        .list_tandems(ListTandemsRequest {
            filter_id: mentor_id.to_owned(),
        })
        .await?
        .into_inner()
        .tandems;
    anyhow::ensure!(tandems.len() == 1, "the node holds one tandem: {tandems:?}");
    Ok(tandems.remove(0))
}

async fn stats(f: &mut TestFederation) -> anyhow::Result<NetworkStats> {
    Ok(f.operator
        .get_network_stats(GetNetworkStatsRequest {})
        .await?
        .into_inner())
}

async fn company_check_in(
    f: &mut TestFederation,
    id: &str,
    c: CheckIn,
) -> Result<Tandem, tonic::Status> {
    let request = f
        .as_company(
            "acme",
            RecordCheckInRequest {
                tandem_id: id.to_owned(),
                check_in: Some(c),
            },
        )
        .map_err(|e| tonic::Status::internal(e.to_string()))?;
    f.mentees
        .record_check_in(request)
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_tandem_runs_from_goals_through_meetings_and_reviews_to_completion() -> anyhow::Result<()>
{
    let clock = TestClock::now();
    let mut f = start_with_clock(&["chamber", "startups"], Some(&clock)).await?;
    let (mentee_id, id, mentor_id) = form_tandem(&mut f).await?;

    // Both sides see the new tandem, waiting for its goals; the node's copy names no mentee.
    let t = company_view(&mut f, &id).await?;
    assert_eq!(t.status(), TandemStatus::Starting);
    assert_eq!(t.mentee_id, mentee_id);
    let n = node_view(&mut f, &mentor_id).await?;
    assert_eq!(
        (n.status(), n.mentee_id.as_str()),
        (TandemStatus::Starting, "")
    );
    // No meeting can be recorded before the goals and cadence are.
    let early = company_check_in(&mut f, &id, meeting(clock.get(), &[])).await;
    assert_eq!(
        early.expect_err("not started").code(),
        Code::FailedPrecondition
    );

    // Start: goals with baseline and target, every four weeks for six months.
    let start = clock.get();
    let t = f
        .mentees
        .start_tandem(f.as_company(
            "acme",
            StartTandemRequest {
                tandem_id: id.clone(),
                plan: Some(TandemPlan {
                    starts_at_ms: start,
                    ..plan()
                }),
            },
        )?)
        .await?
        .into_inner();
    assert_eq!(t.status(), TandemStatus::Active);
    assert_eq!(
        t.next_meeting_due_at_ms,
        start + 35 * DAY_MS,
        "cadence plus a week of grace"
    );
    let n = node_view(&mut f, &mentor_id).await?;
    assert_eq!(n.goals.len(), 2);
    assert!(
        n.goals.iter().all(|g| g.description.is_empty()),
        "goal descriptions stay at the broker: {n:?}"
    );

    // Bad check-ins are refused with the field named, and nothing changes.
    let before_start = company_check_in(&mut f, &id, meeting(start - DAY_MS, &[])).await;
    let status = before_start.expect_err("before the start");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("check_in.met_at_ms"),
        "{status:?}"
    );
    let out_of_range = company_check_in(&mut f, &id, meeting(start, &[(0, 7)])).await;
    let status = out_of_range.expect_err("level 7");
    assert!(
        status.message().starts_with("check_in.progress[0].level"),
        "{status:?}"
    );
    // Another company cannot see or touch the tandem.
    let foreign = f
        .mentees
        .get_tandem(f.as_company(
            "globex",
            GetTandemRequest {
                tandem_id: id.clone(),
            },
        )?)
        .await
        .expect_err("foreign tandem");
    assert_eq!(foreign.code(), Code::NotFound);

    // Two weeks in, the company records the first meeting.
    clock.advance_days(14);
    let t = company_check_in(&mut f, &id, meeting(clock.get() - DAY_MS, &[(0, 3)])).await?;
    assert_eq!((t.check_ins.len(), t.goals[0].current), (1, 3));

    // Four weeks in, the mentor's side records a meeting at the node; the broker picks it up.
    clock.advance_days(14);
    f.settle().await?;
    let n = f.admins[0]
        .record_check_in(RecordCheckInRequest {
            tandem_id: id.clone(),
            check_in: Some(meeting(clock.get(), &[(1, 2)])),
        })
        .await?
        .into_inner();
    assert_eq!(n.check_ins.len(), 2, "the node shows its entry at once");
    let sync = f
        .operator
        .sync_nodes(SyncNodesRequest::default())
        .await?
        .into_inner();
    assert_eq!(sync.results.iter().map(|r| r.tandem_events).sum::<u32>(), 1);
    let t = company_view(&mut f, &id).await?;
    assert_eq!(t.check_ins.len(), 2);
    assert_eq!(t.check_ins[1].recorded_by(), TandemSide::Mentor);
    assert_eq!(t.goals[1].current, 2);

    // Nobody meets for forty days: the tandem is overdue for everyone who looks.
    clock.advance_days(40);
    assert!(
        company_view(&mut f, &id).await?.overdue,
        "company sees the flag"
    );
    assert!(
        node_view(&mut f, &mentor_id).await?.overdue,
        "node sees the flag"
    );
    assert_eq!(
        stats(&mut f).await?.tandems_overdue,
        1,
        "operator sees the flag"
    );

    // The next check-in clears it everywhere.
    let t = company_check_in(&mut f, &id, meeting(clock.get(), &[(0, 4)])).await?;
    assert!(!t.overdue);
    assert!(!node_view(&mut f, &mentor_id).await?.overdue);
    assert_eq!(stats(&mut f).await?.tandems_overdue, 0);

    // The midpoint review, three months in, compares with baseline and target.
    clock.advance_days(30);
    company_check_in(&mut f, &id, meeting(clock.get(), &[(1, 2)])).await?;
    let early_final = f
        .mentees
        .review_goals(f.as_company(
            "acme",
            ReviewGoalsRequest {
                tandem_id: id.clone(),
                point: ReviewPoint::Final as i32,
            },
        )?)
        .await
        .expect_err("the final review is not open yet");
    assert_eq!(early_final.code(), Code::FailedPrecondition);
    let t = f
        .mentees
        .review_goals(f.as_company(
            "acme",
            ReviewGoalsRequest {
                tandem_id: id.clone(),
                point: ReviewPoint::Midpoint as i32,
            },
        )?)
        .await?
        .into_inner();
    let review = t.reviews.first().expect("a midpoint review");
    assert_eq!(
        review
            .goals
            .iter()
            .map(|g| (g.baseline, g.target, g.current, g.attainment_percent))
            .collect::<Vec<_>>(),
        vec![(2, 4, 4, 100), (1, 3, 2, 50)]
    );
    assert_eq!(review.attainment_percent, 75);

    // Monthly meetings to the end of the programme.
    for _ in 0..3 {
        clock.advance_days(28);
        company_check_in(&mut f, &id, meeting(clock.get(), &[(1, 3)])).await?;
    }
    let not_yet = f
        .mentees
        .end_tandem(f.as_company(
            "acme",
            EndTandemRequest {
                tandem_id: id.clone(),
                reason: EndReason::ProgrammeCompleted as i32,
            },
        )?)
        .await
        .expect_err("the programme runs six months");
    assert_eq!(not_yet.code(), Code::FailedPrecondition);
    clock.advance_days(10);
    f.mentees
        .review_goals(f.as_company(
            "acme",
            ReviewGoalsRequest {
                tandem_id: id.clone(),
                point: ReviewPoint::Final as i32,
            },
        )?)
        .await?;
    let t = f
        .mentees
        .end_tandem(f.as_company(
            "acme",
            EndTandemRequest {
                tandem_id: id.clone(),
                reason: EndReason::ProgrammeCompleted as i32,
            },
        )?)
        .await?
        .into_inner();
    assert_eq!(t.status(), TandemStatus::Completed);
    let after_end = company_check_in(&mut f, &id, meeting(clock.get(), &[])).await;
    assert_eq!(
        after_end.expect_err("ended").code(),
        Code::FailedPrecondition
    );

    // Feedback from both sides; the mentor's comment stays at the node.
    f.mentees
        .give_feedback(f.as_company(
            "acme",
            GiveFeedbackRequest {
                tandem_id: id.clone(),
                feedback: Some(Feedback {
                    rating: 5,
                    comment: "opened doors for me".into(),
                    given_at_ms: 0,
                }),
            },
        )?)
        .await?;
    f.settle().await?;
    f.admins[0]
        .give_feedback(GiveFeedbackRequest {
            tandem_id: id.clone(),
            feedback: Some(Feedback {
                rating: 4,
                comment: "a committed mentee".into(),
                given_at_ms: 0,
            }),
        })
        .await?;
    f.operator.sync_nodes(SyncNodesRequest::default()).await?;

    let t = company_view(&mut f, &id).await?;
    assert_eq!(t.reviews.len(), 2);
    assert_eq!(
        t.mentee_feedback
            .as_ref()
            .map(|f| (f.rating, f.comment.as_str())),
        Some((5, "opened doors for me"))
    );
    assert_eq!(
        t.mentor_feedback
            .as_ref()
            .map(|f| (f.rating, f.comment.as_str())),
        Some((4, "")),
        "the broker holds the mentor's rating, not the comment"
    );
    let n = node_view(&mut f, &mentor_id).await?;
    assert_eq!(n.status(), TandemStatus::Completed);
    assert_eq!(
        n.mentor_feedback.as_ref().map(|f| f.comment.as_str()),
        Some("a committed mentee")
    );
    assert_eq!(
        n.mentee_feedback
            .as_ref()
            .map(|f| (f.rating, f.comment.as_str())),
        Some((5, "")),
        "the node gets the mentee's rating, not the comment"
    );

    // The mentee is finished, the mentor's place is free again and republished.
    let m = f
        .mentees
        .get_mentee(f.as_company(
            "acme",
            GetMenteeRequest {
                mentee_id: mentee_id.clone(),
            },
        )?)
        .await?
        .into_inner();
    assert_eq!(m.status(), MenteeStatus::Finished);
    let record = f.admins[0]
        .get_mentor(GetMentorRequest {
            mentor_id: mentor_id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(record.free_capacity, 2);
    f.operator.sync_nodes(SyncNodesRequest::default()).await?;
    let s = stats(&mut f).await?;
    let chamber = s
        .nodes
        .iter()
        .find(|n| n.node_id == "chamber")
        .expect("chamber");
    assert_eq!(chamber.free_capacity, 2, "{s:?}");
    assert_eq!(
        (
            s.tandems_completed,
            s.tandems_active,
            s.tandems_overdue,
            s.mentees_finished
        ),
        (1, 0, 0, 1)
    );
    assert_eq!(s.goal_attainment_percent, 100);

    // Every change is in the audit log, attributed to the side that made it.
    let audit = f
        .operator
        .list_audit_events(ListAuditEventsRequest::default())
        .await?
        .into_inner()
        .events;
    let tandem_actions: Vec<(String, String)> = audit
        .iter()
        .filter(|e| e.object_id == id && e.action.starts_with("tandem."))
        .map(|e| (e.actor.clone(), e.action.clone()))
        .collect();
    let acme = format!("company:{}", f.companies["acme"].company_id);
    let acme = acme.as_str();
    for expected in [
        (acme, "tandem.started"),
        ("node:chamber", "tandem.check_in"),
        (acme, "tandem.reviewed"),
        (acme, "tandem.ended"),
        ("node:chamber", "tandem.feedback"),
    ] {
        assert!(
            tandem_actions
                .iter()
                .any(|(a, b)| (a.as_str(), b.as_str()) == expected),
            "missing {expected:?} in {tandem_actions:?}"
        );
    }
    f.federation.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_tandem_ended_early_in_its_first_weeks_sends_the_mentee_back_without_that_mentor()
-> anyhow::Result<()> {
    let clock = TestClock::now();
    let mut f = start_with_clock(&["chamber", "startups"], Some(&clock)).await?;
    let (mentee_id, id, mentor_id) = form_tandem(&mut f).await?;
    f.mentees
        .start_tandem(f.as_company(
            "acme",
            StartTandemRequest {
                tandem_id: id.clone(),
                plan: Some(plan()),
            },
        )?)
        .await?;
    f.settle().await?;
    clock.advance_days(10);
    // An ending needs a reason.
    let no_reason = f.admins[0]
        .end_tandem(EndTandemRequest {
            tandem_id: id.clone(),
            reason: EndReason::Unspecified as i32,
        })
        .await
        .expect_err("no reason");
    assert_eq!(no_reason.code(), Code::InvalidArgument);
    // The mentor ends it at the node; the broker learns at its next sync.
    let n = f.admins[0]
        .end_tandem(EndTandemRequest {
            tandem_id: id.clone(),
            reason: EndReason::Mismatch as i32,
        })
        .await?
        .into_inner();
    assert_eq!(n.status(), TandemStatus::EndedEarly);
    f.operator.sync_nodes(SyncNodesRequest::default()).await?;

    let t = company_view(&mut f, &id).await?;
    assert_eq!(
        (t.status(), t.ended_by(), t.end_reason(), t.mentee_rematched),
        (
            TandemStatus::EndedEarly,
            TandemSide::Mentor,
            EndReason::Mismatch,
            true
        )
    );
    let m = f
        .mentees
        .get_mentee(f.as_company(
            "acme",
            GetMenteeRequest {
                mentee_id: mentee_id.clone(),
            },
        )?)
        .await?
        .into_inner();
    assert_eq!(m.status(), MenteeStatus::Waiting);
    f.settle().await?;
    let record = f.admins[0]
        .get_mentor(GetMentorRequest {
            mentor_id: mentor_id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(record.free_capacity, 2, "the mentor's place is free again");

    // The next round does not propose the same mentor again.
    f.operator.sync_nodes(SyncNodesRequest::default()).await?;
    let round = f
        .operator
        .run_matching_round(RunMatchingRoundRequest {})
        .await?
        .into_inner();
    assert_eq!(round.proposals, 0, "{round:?}");
    let s = stats(&mut f).await?;
    assert_eq!((s.tandems_ended_early, s.mentees_waiting), (1, 1));
    f.federation.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn withdrawing_a_mentee_ends_its_running_tandem_and_frees_the_place() -> anyhow::Result<()> {
    let clock = TestClock::now();
    let mut f = start_with_clock(&["chamber", "startups"], Some(&clock)).await?;
    let (mentee_id, id, mentor_id) = form_tandem(&mut f).await?;
    f.mentees
        .start_tandem(f.as_company(
            "acme",
            StartTandemRequest {
                tandem_id: id.clone(),
                plan: Some(plan()),
            },
        )?)
        .await?;
    clock.advance_days(60);
    f.mentees
        .withdraw_mentee(f.as_company(
            "acme",
            tandem_proto::WithdrawMenteeRequest {
                mentee_id: mentee_id.clone(),
            },
        )?)
        .await?;
    let t = company_view(&mut f, &id).await?;
    assert_eq!(
        (t.status(), t.end_reason(), t.mentee_rematched),
        (TandemStatus::EndedEarly, EndReason::ChangedRole, false)
    );
    let n = node_view(&mut f, &mentor_id).await?;
    assert_eq!(
        n.status(),
        TandemStatus::EndedEarly,
        "the node's copy follows"
    );
    let record = f.admins[0]
        .get_mentor(GetMentorRequest {
            mentor_id: mentor_id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(record.free_capacity, 2, "the mentor's place is free again");
    let m = f
        .mentees
        .get_mentee(f.as_company("acme", GetMenteeRequest { mentee_id })?)
        .await?
        .into_inner();
    assert_eq!(m.status(), MenteeStatus::Withdrawn);
    f.federation.shutdown().await;
    Ok(())
}
