//! Scenarios of one room in virtual time (the room takes `now` as an input).
use super::*;

const LIMITS: RoomLimits = RoomLimits {
    empty_timeout: Duration::from_secs(120),
    max_participants: 2,
    duration: None,
};

fn p(id: &str) -> Participant {
    Participant {
        user_id: UserId::parse(id).unwrap(),
        sid: format!("PA_{id}"),
        name: id.to_uppercase(),
        is_admin: false,
        is_hidden: false,
        joined_at: 0,
        metadata: "{}".into(),
    }
}

fn drain(room: &mut Room) -> Vec<RoomEvent> {
    std::iter::from_fn(|| room.poll_event()).collect()
}

#[test]
fn a_participant_changes_only_their_name_picture_and_language() {
    let t0 = Instant::now();
    let mut room = Room::new(t0, LIMITS);
    let ann = UserId::parse("ann").unwrap();
    room.invite(ann.clone(), inv()).unwrap();
    let current = room.invitation(&ann).unwrap().metadata_json();
    let mut v: serde_json::Value = serde_json::from_str(&current).unwrap();
    v["preferred_lang"] = "de".into();
    v["profile_pic"] = "https://example.org/a.png".into();
    let text = v.to_string();
    let (m, n) = room.own_update(&ann, &text, "Ann B").unwrap().unwrap();
    assert_eq!(
        (m.as_str(), n.as_str()),
        (text.as_str(), "Ann B"),
        "the client's text, applied"
    );
    let kept = room.invitation(&ann).unwrap();
    assert_eq!(
        (kept.metadata.preferred_lang.as_deref(), kept.name.as_str()),
        (Some("de"), "Ann B")
    );
    // The server's fields stay the server's; nothing else rides along.
    let refused = |room: &mut Room, v: serde_json::Value| {
        room.own_update(&ann, &v.to_string(), "").unwrap_err()
    };
    let mut admin = v.clone();
    admin["is_admin"] = true.into();
    assert!(refused(&mut room, admin).contains("only profile_pic and preferred_lang"));
    let mut extra = v.clone();
    extra["badge"] = "gold".into();
    assert!(refused(&mut room, extra).contains("no other fields"));
    let mut pic = v.clone();
    pic["profile_pic"] = "javascript:alert(1)".into();
    assert!(refused(&mut room, pic).contains("profile_pic"));
    assert!(room.own_update(&ann, "not json", "").is_err());
    assert!(room.own_update(&ann, "", &"x".repeat(65)).is_err());
    // A name alone (the SDK sends the current metadata back with it).
    assert_eq!(
        room.own_update(&ann, &text, "Ann C").unwrap().unwrap().1,
        "Ann C"
    );
    // Someone without an invitation: their LiveKit token decided.
    assert_eq!(
        room.own_update(&UserId::parse("lk").unwrap(), "{}", "x"),
        Ok(None)
    );
}

fn inv() -> Invitation {
    Invitation {
        name: "X".into(),
        is_admin: false,
        metadata: UserMetadata::default(),
    }
}

/// The epochs drawn, each as (generation, "recipient,recipient").
fn epochs(room: &mut Room) -> Vec<(u32, String)> {
    drain(room)
        .into_iter()
        .filter_map(|e| match e {
            RoomEvent::KeyEpoch { epoch, to } => Some((
                epoch.generation,
                to.iter()
                    .map(|u| u.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            )),
            _ => None,
        })
        .collect()
}

/// A server-generated-key room without a participant cap.
fn epoch_room(t0: Instant) -> Room {
    let limits = RoomLimits {
        max_participants: 0,
        ..LIMITS
    };
    Room::new(t0, limits).with_key_epochs()
}

fn admitted(room: &mut Room, t: Instant, id: &str) -> KeyEpoch {
    let user = UserId::parse(id).unwrap();
    room.invite(user.clone(), inv()).unwrap();
    let e = room.admit(&user).expect("admitted");
    room.join(t, p(id)).unwrap();
    e
}

#[test]
fn each_admission_draws_a_new_epoch_for_the_newcomer_and_everyone_in_the_room() {
    let t0 = Instant::now();
    let mut room = epoch_room(t0);
    let a = admitted(&mut room, t0, "ann");
    assert_eq!(a.generation, 1);
    assert_eq!(epochs(&mut room), vec![], "nobody else to tell");
    let b = admitted(&mut room, t0, "bob");
    assert_eq!(b.generation, 2);
    assert_ne!(a.secret.expose(), b.secret.expose());
    assert_eq!(epochs(&mut room), vec![(2, "ann".into())]);
    let c = admitted(&mut room, t0, "cat");
    assert_eq!(c.generation, 3);
    assert_eq!(epochs(&mut room), vec![(3, "ann,bob".into())]);
    // A participant who reconnects gets the current epoch, and only a participant does.
    let cat = UserId::parse("cat").unwrap();
    assert_eq!(room.current_epoch(&cat), Some(c.clone()));
    assert_eq!(room.current_epoch(&UserId::parse("dan").unwrap()), None);
    // Admitted again with nothing changed since (a reload): the epoch they hold already,
    // no switch for anyone; the same secret for the history their browser kept.
    let history = room.history_secret(&cat).unwrap();
    assert_eq!(room.admit(&cat), Some(c.clone()));
    assert_eq!(epochs(&mut room), vec![]);
    assert!(Arc::ptr_eq(&history, &room.history_secret(&cat).unwrap()));
    let bob = UserId::parse("bob").unwrap();
    assert!(!Arc::ptr_eq(&history, &room.history_secret(&bob).unwrap()));
    // Once someone else came in, a reload is an admission like any other.
    admitted(&mut room, t0, "dan");
    drain(&mut room);
    assert_eq!(room.admit(&cat).unwrap().generation, 5);
    assert_eq!(epochs(&mut room), vec![(5, "ann,bob,dan".into())]);
}

#[test]
fn whoever_leaves_or_is_removed_is_left_behind_by_a_new_epoch() {
    let t0 = Instant::now();
    let mut room = epoch_room(t0);
    for id in ["ann", "bob", "cat"] {
        admitted(&mut room, t0, id);
    }
    drain(&mut room);
    let bob = UserId::parse("bob").unwrap();
    room.remove(t0, &bob, false);
    assert_eq!(epochs(&mut room), vec![(4, "ann,cat".into())]);
    assert_eq!(
        room.current_epoch(&bob),
        None,
        "a removed user gets nothing"
    );
    assert_eq!(room.admit(&bob), None, "nor by asking to be let in");
    assert!(room.history_secret(&bob).is_none());
    room.leave(t0, &UserId::parse("cat").unwrap(), None);
    assert_eq!(epochs(&mut room), vec![(5, "ann".into())]);
    // Someone let in who has not connected yet holds the current epoch: removing them
    // moves the room on too.
    let dan = UserId::parse("dan").unwrap();
    room.invite(dan.clone(), inv()).unwrap();
    assert_eq!(room.admit(&dan).unwrap().generation, 6);
    drain(&mut room);
    room.remove(t0, &dan, true);
    assert_eq!(epochs(&mut room), vec![(7, "ann".into())]);
    // A new connection of someone already in does not change the key; the last leaver
    // leaves nobody to tell.
    room.join(t0, p("ann")).unwrap();
    assert_eq!(epochs(&mut room), vec![]);
    room.leave(t0, &UserId::parse("ann").unwrap(), None);
    assert_eq!(epochs(&mut room), vec![]);
}

#[test]
fn rooms_without_key_epochs_and_waiting_users_draw_nothing() {
    let t0 = Instant::now();
    let mut plain = Room::new(t0, LIMITS);
    let ann = UserId::parse("ann").unwrap();
    plain.invite(ann.clone(), inv()).unwrap();
    assert_eq!(plain.admit(&ann), None);
    let mut room = Room::new(t0, LIMITS).with_key_epochs();
    assert_eq!(room.admit(&ann), None, "not invited");
    let mut waiting = inv();
    waiting.metadata.wait_for_approval = true;
    room.invite(ann.clone(), waiting).unwrap();
    assert_eq!(room.admit(&ann), None, "waiting for approval");
    room.approve(&Who::All);
    assert_eq!(room.admit(&ann).map(|e| e.generation), Some(1));
}

#[test]
fn there_is_one_presenter_the_first_admin_until_an_admin_switches_it() {
    let t0 = Instant::now();
    let mut room = epoch_room(t0);
    let admin = Invitation {
        is_admin: true,
        ..inv()
    };
    let id = |s: &str| UserId::parse(s).unwrap();
    room.invite(id("ann"), admin.clone()).unwrap();
    room.invite(id("bob"), inv()).unwrap();
    room.invite(id("dan"), admin).unwrap();
    let presenters = |room: &Room| -> Vec<String> {
        ["ann", "bob", "dan"]
            .into_iter()
            .filter(|u| room.invitation(&id(u)).unwrap().metadata.is_presenter)
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(presenters(&room), ["ann"], "the first admin, only");
    room.invite(
        id("ann"),
        Invitation {
            is_admin: true,
            ..inv()
        },
    )
    .unwrap();
    assert_eq!(presenters(&room), ["ann"], "a new token keeps it with her");
    assert_eq!(room.switch_presenter(&id("bob"), true, &id("dan")).len(), 2);
    assert_eq!(presenters(&room), ["bob"]);
    // Taking it from bob gives it to the admin who asked.
    assert_eq!(
        room.switch_presenter(&id("bob"), false, &id("dan")).len(),
        2
    );
    assert_eq!(presenters(&room), ["dan"]);
    assert!(room
        .switch_presenter(&id("nobody"), true, &id("dan"))
        .is_empty());
}

#[test]
fn hands_go_up_one_at_a_time_in_order_and_down_one_or_all() {
    let t0 = Instant::now();
    let mut room = epoch_room(t0);
    for id in ["ann", "bob", "cat"] {
        room.invite(UserId::parse(id).unwrap(), inv()).unwrap();
    }
    room.join(t0, p("bob")).unwrap();
    let one = |id: &str| Who::One(UserId::parse(id).unwrap());
    let raised = |room: &Room, id: &str| {
        room.invitation(&UserId::parse(id).unwrap())
            .and_then(|i| i.metadata.raised_hand.clone())
            .filter(|h| h.is_raised)
            .map(|h| h.raised_at)
    };
    assert_eq!(room.set_hand(&one("cat"), true, 100).len(), 1);
    assert_eq!(room.set_hand(&one("bob"), true, 200).len(), 1);
    assert_eq!(
        room.set_hand(&one("bob"), true, 300),
        vec![],
        "already up: keeps its place"
    );
    assert_eq!(
        (raised(&room, "cat"), raised(&room, "bob")),
        (Some(100), Some(200))
    );
    // Those in the room carry it in their metadata.
    let bob = room
        .participants()
        .find(|p| p.user_id.as_str() == "bob")
        .unwrap();
    assert!(
        bob.metadata.contains(r#""is_raised":true"#),
        "{}",
        bob.metadata
    );
    assert_eq!(
        room.set_hand(&Who::All, true, 400),
        vec![],
        "nobody raises another's hand"
    );
    assert_eq!(room.set_hand(&one("cat"), false, 500).len(), 1);
    assert_eq!(raised(&room, "cat"), None);
    assert_eq!(
        room.set_hand(&Who::All, false, 600).len(),
        1,
        "only bob's was still up"
    );
    assert_eq!(raised(&room, "bob"), None);
}

#[test]
fn a_removed_participant_leaves_and_cannot_rejoin_until_invited_again() {
    let t0 = Instant::now();
    let mut room = Room::new(t0, LIMITS);
    let bob = UserId::parse("bob").unwrap();
    room.invite(bob.clone(), inv()).unwrap();
    room.join(t0, p("bob")).unwrap();
    drain(&mut room);
    room.remove(t0, &bob, false);
    assert!(matches!(
        drain(&mut room)[..],
        [RoomEvent::ParticipantLeft(_)]
    ));
    assert_eq!(room.invitation(&bob), None);
    assert_eq!(room.standing(&bob), Standing::Removed);
    assert_eq!(room.join(t0, p("bob")), Err(JoinError::Removed));
    // A new join token lets them back.
    room.invite(bob.clone(), inv()).unwrap();
    assert_eq!(room.standing(&bob), Standing::Welcome);
    room.join(t0, p("bob")).unwrap();
}

#[test]
fn a_blocked_user_gets_no_invitation_and_no_join_for_the_session() {
    let t0 = Instant::now();
    let mut room = Room::new(t0, LIMITS);
    let bob = UserId::parse("bob").unwrap();
    room.invite(bob.clone(), inv()).unwrap();
    room.join(t0, p("bob")).unwrap();
    room.remove(t0, &bob, true);
    assert_eq!(room.standing(&bob), Standing::Blocked);
    assert_eq!(room.invite(bob.clone(), inv()), Err(Blocked));
    assert_eq!(room.invitation(&bob), None);
    assert_eq!(room.join(t0, p("bob")), Err(JoinError::Blocked));
    // Others are untouched.
    room.invite(UserId::parse("ann").unwrap(), inv()).unwrap();
    room.join(t0, p("ann")).unwrap();
}

fn waiting_inv(name: &str) -> Invitation {
    let mut i = inv();
    i.name = name.into();
    i.metadata.wait_for_approval = true;
    i
}

#[test]
fn a_waiting_user_cannot_join_until_approved_and_admins_see_who_knocks() {
    let t0 = Instant::now();
    let mut room = Room::new(t0, LIMITS);
    let bob = UserId::parse("bob").unwrap();
    let cat = UserId::parse("cat").unwrap();
    room.invite(bob.clone(), waiting_inv("Bob")).unwrap();
    room.invite(cat.clone(), waiting_inv("Cat")).unwrap();
    assert_eq!(room.join(t0, p("bob")), Err(JoinError::AwaitingApproval));
    // Invited is not waiting: only those whose page asks are listed.
    assert_eq!(room.waiting(t0), vec![]);
    assert!(room.knock(t0, &bob));
    let t1 = t0 + Duration::from_secs(3);
    assert!(room.knock(t1, &cat));
    assert!(room.knock(t1, &bob));
    let names: Vec<_> = room.waiting(t1).into_iter().map(|w| w.name).collect();
    assert_eq!(names, ["Bob", "Cat"], "longest waiting first");
    assert_eq!(room.waiting(t1)[0].waiting_for, Duration::from_secs(3));
    // One who closed the page drops off after KNOCK_PRESENCE.
    let t2 = t1 + KNOCK_PRESENCE + Duration::from_secs(1);
    assert!(room.knock(t2, &cat));
    let names: Vec<_> = room.waiting(t2).into_iter().map(|w| w.name).collect();
    assert_eq!(names, ["Cat"]);

    assert_eq!(room.approve(&Who::One(bob.clone())), vec![bob.clone()]);
    assert!(!room.awaits_approval(&bob));
    assert!(!room.knock(t2, &bob), "an approved user no longer waits");
    assert!(
        room.awaits_approval(&cat),
        "approving one leaves the others waiting"
    );
    room.join(t2, p("bob")).unwrap();
    assert_eq!(
        room.approve(&Who::One(bob.clone())),
        vec![],
        "nothing to approve twice"
    );
}

#[test]
fn approve_all_lets_in_every_waiting_user_and_reject_voids_the_invitation() {
    let t0 = Instant::now();
    let mut room = Room::new(t0, LIMITS);
    for u in ["a", "b", "c"] {
        room.invite(UserId::parse(u).unwrap(), waiting_inv(u))
            .unwrap();
        room.knock(t0, &UserId::parse(u).unwrap());
    }
    let c = UserId::parse("c").unwrap();
    // Rejecting is removing: the invitation is void and the user no longer listed.
    room.remove(t0, &c, false);
    assert_eq!(room.waiting(t0).len(), 2);
    assert_eq!(room.approve(&Who::All).len(), 2);
    assert_eq!(room.waiting(t0), vec![]);
    assert_eq!(room.join(t0, p("c")), Err(JoinError::Removed));
    room.join(t0, p("a")).unwrap();
    // A new join token puts a non-admin back in the waiting room.
    room.invite(c.clone(), waiting_inv("c")).unwrap();
    assert!(room.awaits_approval(&c));
}

#[test]
fn locks_change_non_admin_invitations_only() {
    use super::super::locks::LockService;
    let t0 = Instant::now();
    let mut room = Room::new(t0, LIMITS);
    let mut admin = inv();
    admin.is_admin = true;
    room.invite(UserId::parse("teacher").unwrap(), admin)
        .unwrap();
    room.invite(UserId::parse("a").unwrap(), inv()).unwrap();
    room.invite(UserId::parse("b").unwrap(), inv()).unwrap();
    let changed = room.set_lock(&Who::All, LockService::Webcam, true);
    let ids: Vec<_> = changed.iter().map(|(u, _)| u.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    let locked = |room: &Room, u: &str| {
        room.invitation(&UserId::parse(u).unwrap())
            .and_then(|i| i.metadata.lock_settings.as_ref())
            .and_then(|l| l.lock_webcam)
    };
    assert_eq!(locked(&room, "a"), Some(true));
    assert_eq!(locked(&room, "teacher"), None);
    room.set_lock(
        &Who::One(UserId::parse("b").unwrap()),
        LockService::Webcam,
        false,
    );
    assert_eq!(locked(&room, "b"), Some(false));
    assert_eq!(locked(&room, "a"), Some(true));
}

#[test]
fn first_join_starts_the_room_and_joins_are_reported_in_order() {
    let t0 = Instant::now();
    let mut room = Room::new(t0, LIMITS);
    assert_eq!(room.status(), RoomStatus::Created);
    room.join(t0, p("a")).unwrap();
    assert_eq!(
        drain(&mut room),
        vec![RoomEvent::Started, RoomEvent::ParticipantJoined(p("a"))]
    );
    assert_eq!(room.status(), RoomStatus::Active);
    assert_eq!(
        room.poll_timeout(),
        None,
        "an occupied room without a duration has no timer"
    );
}

#[test]
fn an_unlimited_room_still_holds_at_most_the_hard_cap() {
    let t0 = Instant::now();
    let mut room = Room::new(
        t0,
        RoomLimits {
            max_participants: 0,
            ..LIMITS
        },
    );
    let cap = enclave_proto::room::MAX_PARTICIPANTS_PER_ROOM;
    for i in 0..cap {
        room.join(t0, p(&format!("u{i}"))).unwrap();
    }
    assert_eq!(room.join(t0, p("one-too-many")), Err(JoinError::RoomFull));
    room.join(t0, p("u0")).unwrap();
    assert_eq!(room.participants().count(), cap as usize);
}

#[test]
fn join_is_refused_once_the_room_is_full_but_a_reconnect_replaces() {
    let t0 = Instant::now();
    let mut room = Room::new(t0, LIMITS);
    room.join(t0, p("a")).unwrap();
    room.join(t0, p("b")).unwrap();
    assert_eq!(room.join(t0, p("c")), Err(JoinError::RoomFull));
    drain(&mut room);
    room.join(t0, p("a")).unwrap();
    assert_eq!(
        drain(&mut room),
        vec![
            RoomEvent::ParticipantLeft(p("a")),
            RoomEvent::ParticipantJoined(p("a"))
        ]
    );
    assert_eq!(room.participants().count(), 2);
}

#[test]
fn empty_room_ends_after_empty_timeout_from_creation() {
    let t0 = Instant::now();
    let mut room = Room::new(t0, LIMITS);
    assert_eq!(room.poll_timeout(), Some(t0 + Duration::from_secs(120)));
    room.handle_timeout(t0 + Duration::from_secs(119));
    assert_eq!(drain(&mut room), vec![]);
    room.handle_timeout(t0 + Duration::from_secs(120));
    assert_eq!(
        drain(&mut room),
        vec![RoomEvent::Ended(EndReason::EmptyTimeout)]
    );
    assert_eq!(room.poll_timeout(), None);
    assert_eq!(room.join(t0, p("a")), Err(JoinError::RoomEnded));
}

#[test]
fn empty_timeout_restarts_when_the_last_participant_leaves() {
    let t0 = Instant::now();
    let mut room = Room::new(t0, LIMITS);
    let t1 = t0 + Duration::from_secs(100);
    room.join(t1, p("a")).unwrap();
    let t2 = t0 + Duration::from_secs(1000);
    room.leave(t2, &p("a").user_id, None);
    drain(&mut room);
    assert_eq!(room.poll_timeout(), Some(t2 + Duration::from_secs(120)));
    room.handle_timeout(t2 + Duration::from_secs(60));
    assert_eq!(drain(&mut room), vec![]);
    room.handle_timeout(t2 + Duration::from_secs(120));
    assert_eq!(
        drain(&mut room),
        vec![RoomEvent::Ended(EndReason::EmptyTimeout)]
    );
}

#[test]
fn a_breakout_rooms_clock_runs_from_its_creation_and_a_host_can_give_it_more_time() {
    let t0 = Instant::now();
    let limits = RoomLimits {
        duration: Some(Duration::from_secs(600)),
        ..LIMITS
    };
    let mut room = Room::new(t0, limits).with_clock_from(t0);
    room.join(t0 + Duration::from_secs(30), p("a")).unwrap();
    drain(&mut room);
    assert_eq!(
        room.poll_timeout(),
        Some(t0 + Duration::from_secs(600)),
        "not from the first join"
    );
    assert!(room.extend_duration(Duration::from_secs(300)));
    assert_eq!(room.poll_timeout(), Some(t0 + Duration::from_secs(900)));
    room.handle_timeout(t0 + Duration::from_secs(600));
    assert_eq!(drain(&mut room), vec![], "still running after the old end");
    let mut open = Room::new(t0, LIMITS);
    assert!(
        !open.extend_duration(Duration::from_secs(300)),
        "no duration to extend"
    );
}

#[test]
fn room_duration_counts_from_the_first_join_and_ends_an_occupied_room() {
    let t0 = Instant::now();
    let limits = RoomLimits {
        duration: Some(Duration::from_secs(600)),
        ..LIMITS
    };
    let mut room = Room::new(t0, limits);
    let t1 = t0 + Duration::from_secs(30);
    room.join(t1, p("a")).unwrap();
    drain(&mut room);
    assert_eq!(room.poll_timeout(), Some(t1 + Duration::from_secs(600)));
    room.handle_timeout(t1 + Duration::from_secs(600));
    assert_eq!(
        drain(&mut room),
        vec![
            RoomEvent::ParticipantLeft(p("a")),
            RoomEvent::Ended(EndReason::DurationElapsed)
        ]
    );
}

#[test]
fn end_disconnects_everyone_once() {
    let t0 = Instant::now();
    let mut room = Room::new(t0, LIMITS);
    room.join(t0, p("a")).unwrap();
    drain(&mut room);
    room.end(EndReason::Requested);
    room.end(EndReason::Requested);
    room.leave(t0, &p("a").user_id, None);
    assert_eq!(
        drain(&mut room),
        vec![
            RoomEvent::ParticipantLeft(p("a")),
            RoomEvent::Ended(EndReason::Requested)
        ]
    );
}

#[test]
fn a_replaced_connection_leaving_does_not_remove_the_new_one() {
    let t0 = Instant::now();
    let mut room = Room::new(t0, LIMITS);
    room.join(t0, p("a")).unwrap();
    let mut again = p("a");
    again.sid = "PA_new".into();
    room.join(t0, again).unwrap();
    drain(&mut room);
    room.leave(t0, &p("a").user_id, Some("PA_a"));
    assert_eq!(drain(&mut room), vec![]);
    room.leave(t0, &p("a").user_id, Some("PA_new"));
    assert_eq!(room.participants().count(), 0);
}

#[test]
fn leaving_without_joining_changes_nothing() {
    let t0 = Instant::now();
    let mut room = Room::new(t0, LIMITS);
    room.leave(t0, &p("ghost").user_id, None);
    assert_eq!(drain(&mut room), vec![]);
    assert_eq!(room.status(), RoomStatus::Created);
}
