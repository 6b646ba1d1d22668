use super::*;

const MIN: u64 = 60_000;

fn own(away_after: Option<u64>) -> Presence {
    Presence::new(1_000, PresenceState::Online, String::new(), 0, away_after)
}

fn drain(p: &mut Presence) -> usize {
    std::iter::from_fn(|| p.poll_event()).count()
}

#[test]
fn names_round_trip_and_bad_ones_are_refused() {
    for state in PresenceState::ALL {
        assert_eq!(state.as_str().parse::<PresenceState>(), Ok(state));
        assert_eq!(state.to_string(), state.as_str());
    }
    assert_eq!("On_The_Phone".parse(), Ok(PresenceState::OnThePhone));
    assert!(matches!(
        "sleeping".parse::<PresenceState>(),
        Err(PresenceError::UnknownState(_))
    ));
}

#[test]
fn appear_offline_is_shown_as_offline_without_a_note() {
    let mut p = own(None);
    p.set(2_000, PresenceState::AppearOffline, "secret plans")
        .unwrap();
    let update = p.update();
    assert_eq!(update.shown, ShownPresence::Offline);
    assert_eq!(update.note, "");
    assert_eq!(update.check(), Ok(()));
    assert_eq!(p.effective(), PresenceState::AppearOffline);
    assert_eq!(p.note(), "secret plans");
}

#[test]
fn setting_bumps_the_version_and_reports_one_change() {
    let mut p = own(None);
    let v0 = p.version();
    assert!(v0 >= 1_000, "version starts at least at now");
    p.set(1_000, PresenceState::Busy, "  in a meeting  ")
        .unwrap();
    assert!(p.version() > v0);
    assert_eq!(p.note(), "in a meeting");
    assert_eq!(p.update().shown, ShownPresence::Busy);
    assert_eq!(drain(&mut p), 1);
    // Restarting from the persisted version goes past it.
    let again = Presence::new(5, PresenceState::Busy, "x".into(), p.version(), None);
    assert!(again.version() > p.version());
}

#[test]
fn auto_away_after_idle_and_back_on_activity() {
    let mut p = own(Some(10 * MIN));
    assert_eq!(p.poll_timeout(), Some(1_000 + 10 * MIN));
    p.handle_timeout(1_000 + 10 * MIN - 1);
    assert_eq!(p.effective(), PresenceState::Online);
    assert_eq!(drain(&mut p), 0);

    p.handle_activity(5 * MIN);
    assert_eq!(p.poll_timeout(), Some(15 * MIN));
    p.handle_timeout(15 * MIN);
    assert!(p.is_auto_away());
    assert_eq!(p.effective(), PresenceState::Away);
    assert_eq!(p.update().shown, ShownPresence::Away);
    assert_eq!(p.chosen(), PresenceState::Online, "the choice is kept");
    assert_eq!(p.poll_timeout(), None, "already away");
    assert_eq!(drain(&mut p), 1);

    let v = p.version();
    p.handle_activity(16 * MIN);
    assert!(!p.is_auto_away());
    assert_eq!(p.effective(), PresenceState::Online);
    assert!(p.version() > v);
    assert_eq!(drain(&mut p), 1);
    // Activity while not away changes nothing visible.
    p.handle_activity(17 * MIN);
    assert_eq!(drain(&mut p), 0);
}

#[test]
fn auto_away_only_from_online_and_only_when_configured() {
    let mut p = own(Some(MIN));
    p.set(2_000, PresenceState::Busy, "").unwrap();
    assert_eq!(p.poll_timeout(), None, "busy stays busy");
    p.handle_timeout(100 * MIN);
    assert_eq!(p.effective(), PresenceState::Busy);

    let mut never = own(None);
    assert_eq!(never.poll_timeout(), None);
    never.handle_timeout(u64::MAX);
    assert_eq!(never.effective(), PresenceState::Online);
}

/// Drives `p` like the node's loop does, on a virtual clock: at `now`,
/// handles the timeout if it is due. Returns the events it raised.
fn step(p: &mut Presence, now: u64) -> usize {
    if p.poll_timeout().is_some_and(|at| at <= now) {
        p.handle_timeout(now);
    }
    drain(p)
}

const SEC: u64 = 1_000;

#[test]
fn idle_user_turns_away_exactly_at_the_threshold_and_back_on_activity() {
    let start = 1_000;
    let mut p = own(away_after_from_secs(10));
    drain(&mut p);
    // Half a virtual second at a time up to just before the threshold.
    let mut now = start;
    while now < start + 10 * SEC {
        assert_eq!(step(&mut p, now), 0, "idle {} ms", now - start);
        assert_eq!(p.effective(), PresenceState::Online);
        now += SEC / 2;
    }
    assert_eq!(now, start + 10 * SEC);
    assert_eq!(step(&mut p, now), 1, "away once, at the threshold");
    assert_eq!(p.effective(), PresenceState::Away);
    assert_eq!(p.update().shown, ShownPresence::Away);
    assert_eq!(p.idle_ms(now), 10 * SEC);
    // Staying idle changes nothing more.
    for later in [now + SEC, now + 3_600 * SEC] {
        assert_eq!(step(&mut p, later), 0);
        assert!(p.is_auto_away());
    }

    // Activity brings the user back, with a new version, and the idle
    // time counts again from that activity.
    let back = now + 3_600 * SEC;
    let v = p.version();
    p.handle_activity(back);
    assert_eq!(drain(&mut p), 1);
    assert_eq!(p.effective(), PresenceState::Online);
    assert!(p.version() > v);
    assert_eq!(p.poll_timeout(), Some(back + 10 * SEC));
    assert_eq!(step(&mut p, back + 10 * SEC - 1), 0);
    assert_eq!(p.effective(), PresenceState::Online);
    assert_eq!(step(&mut p, back + 10 * SEC), 1);
    assert_eq!(p.effective(), PresenceState::Away);
}

#[test]
fn activity_before_the_threshold_postpones_away() {
    let mut p = own(away_after_from_secs(10));
    drain(&mut p);
    // Active every 9 s for a virtual hour: never away.
    let mut now = 1_000;
    for _ in 0..400 {
        now += 9 * SEC;
        assert_eq!(step(&mut p, now), 0);
        p.handle_activity(now);
        assert_eq!(drain(&mut p), 0, "activity while present is silent");
        assert_eq!(p.effective(), PresenceState::Online);
    }
    assert_eq!(step(&mut p, now + 10 * SEC), 1);
    assert!(p.is_auto_away());
}

#[test]
fn explicit_states_never_turn_away_by_themselves() {
    for state in PresenceState::ALL {
        if state == PresenceState::Online {
            continue;
        }
        let mut p = own(away_after_from_secs(10));
        p.set(2_000, state, "note").unwrap();
        drain(&mut p);
        assert_eq!(p.poll_timeout(), None, "{state}");
        for now in [2_000 + 10 * SEC, 2_000 + 3_600 * SEC, u64::MAX] {
            assert_eq!(step(&mut p, now), 0, "{state}");
            // Even a timeout handled when none was due.
            p.handle_timeout(now);
            assert_eq!(p.effective(), state, "{state}");
            assert!(!p.is_auto_away(), "{state}");
        }
        // Activity does not change a chosen state either (a chosen `away`
        // stays away).
        p.handle_activity(u64::MAX);
        assert_eq!(drain(&mut p), 0, "{state}");
        assert_eq!(p.effective(), state, "{state}");
    }
}

#[test]
fn choosing_online_again_restarts_the_idle_time() {
    let mut p = own(away_after_from_secs(10));
    p.set(2_000, PresenceState::Busy, "").unwrap();
    assert_eq!(step(&mut p, 2_000 + 60 * SEC), 1, "the set's own change");
    p.set(2_000 + 60 * SEC, PresenceState::Online, "").unwrap();
    drain(&mut p);
    assert_eq!(p.poll_timeout(), Some(2_000 + 70 * SEC));
    assert_eq!(step(&mut p, 2_000 + 70 * SEC - 1), 0);
    assert_eq!(step(&mut p, 2_000 + 70 * SEC), 1);
    assert!(p.is_auto_away());
    // Choosing a state while auto-away ends auto-away.
    p.set(2_000 + 80 * SEC, PresenceState::OutToLunch, "")
        .unwrap();
    assert!(!p.is_auto_away());
    assert_eq!(p.effective(), PresenceState::OutToLunch);
}

#[test]
fn away_after_zero_is_off_and_never_turns_away() {
    assert_eq!(away_after_from_secs(0), None);
    assert_eq!(away_after_from_secs(5), Some(5 * SEC));
    assert_eq!(away_after_from_secs(u64::MAX), Some(u64::MAX));
    let mut p = own(away_after_from_secs(0));
    drain(&mut p);
    assert_eq!(p.away_after_ms(), None);
    for now in [
        1_000,
        1_000 + 3_600 * SEC,
        1_000 + 365 * 24 * 3_600 * SEC,
        u64::MAX,
    ] {
        assert_eq!(p.poll_timeout(), None);
        p.handle_timeout(now);
        assert_eq!(drain(&mut p), 0);
        assert_eq!(p.effective(), PresenceState::Online);
    }
}

#[test]
fn notes_are_capped_and_free_of_control_characters() {
    let mut p = own(None);
    let long = "x".repeat(MAX_NOTE_CHARS + 1);
    assert!(matches!(
        p.set(2, PresenceState::Busy, &long),
        Err(PresenceError::NoteTooLong { .. })
    ));
    assert_eq!(
        p.set(2, PresenceState::Busy, "a\u{1b}[2Jb"),
        Err(PresenceError::NoteControl)
    );
    assert_eq!(
        p.set(2, PresenceState::Busy, "two\nlines"),
        Err(PresenceError::NoteControl)
    );
    assert_eq!(p.effective(), PresenceState::Online, "nothing changed");
    // Exactly the limit, counted in characters, is fine.
    p.set(2, PresenceState::Busy, &"é".repeat(MAX_NOTE_CHARS))
        .unwrap();

    let bad = |shown, note: &str| PresenceUpdate {
        shown,
        note: note.into(),
        version: 1,
        ask: false,
    };
    assert_eq!(
        bad(ShownPresence::Busy, " padded").check(),
        Err(PresenceError::Untrimmed)
    );
    assert_eq!(
        bad(ShownPresence::Offline, "hidden").check(),
        Err(PresenceError::NoteWhileOffline)
    );
    assert!(bad(ShownPresence::Busy, &long).check().is_err());
}

#[test]
fn notes_that_hide_or_reorder_text_are_refused() {
    let mut p = own(None);
    assert_eq!(
        p.set(2, PresenceState::Busy, "back at 5\u{202E}0 ni"),
        Err(PresenceError::NoteHidden(0x202E))
    );
    assert_eq!(
        p.set(2, PresenceState::Busy, "in a\u{200B} meeting"),
        Err(PresenceError::NoteHidden(0x200B))
    );
    assert_eq!(p.effective(), PresenceState::Online, "nothing changed");
    // Any script and emoji sequences are fine.
    p.set(2, PresenceState::Busy, "на встрече 👩\u{200D}💻")
        .unwrap();
    let received = PresenceUpdate {
        shown: ShownPresence::Busy,
        note: "\u{2067}hidden\u{2069}".into(),
        version: 1,
        ask: false,
    };
    assert_eq!(received.check(), Err(PresenceError::NoteHidden(0x2067)));
}

#[test]
fn blocked_users_get_the_same_version_offline() {
    let mut p = own(None);
    p.set(3, PresenceState::Busy, "call me").unwrap();
    let off = p.offline_update();
    assert_eq!(off.shown, ShownPresence::Offline);
    assert_eq!(off.note, "");
    assert_eq!(off.version, p.version());
    // An unblock bumps, so the blocked user's device takes the real one.
    let v = p.version();
    drain(&mut p);
    p.bump(3);
    assert!(p.version() > v);
    assert_eq!(drain(&mut p), 1);
}

#[test]
fn peers_keep_only_the_newest_version() {
    let device = DeviceId([7; 20]);
    let update = |shown, version| PresenceUpdate {
        shown,
        note: String::new(),
        version,
        ask: false,
    };
    let mut peers = PeerPresences::new();
    assert_eq!(
        peers.handle_update(device, update(ShownPresence::Busy, 10)),
        PeerUpdate::Applied(None)
    );
    assert_eq!(
        peers.handle_update(device, update(ShownPresence::Online, 9)),
        PeerUpdate::Stale
    );
    assert_eq!(
        peers.handle_update(device, update(ShownPresence::Online, 10)),
        PeerUpdate::Stale,
        "a replay of the same version"
    );
    assert_eq!(peers.get(&device).unwrap().shown, ShownPresence::Busy);
    assert!(matches!(
        peers.handle_update(device, update(ShownPresence::Offline, 11)),
        PeerUpdate::Applied(Some(_))
    ));
    assert!(peers.hides(&device));
    peers.forget(&device);
    assert!(!peers.hides(&device));
}

#[test]
fn rate_limiter_allows_one_per_interval_per_key() {
    let mut limiter = RateLimiter::new(3_000);
    assert!(limiter.allow(0, &1));
    assert!(!limiter.allow(2_999, &1));
    assert!(limiter.allow(100, &2), "other keys are independent");
    assert!(limiter.allow(3_000, &1));
    // Many keys are pruned without forgetting recent ones.
    for k in 10..(10 + LIMITER_PRUNE_AT as u32 + 10) {
        assert!(limiter.allow(10_000, &k));
    }
    assert!(!limiter.allow(10_001, &10));
    assert!(limiter.last.len() <= LIMITER_PRUNE_AT + 11);
}
