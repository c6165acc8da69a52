use std::net::Ipv4Addr;

use super::throttle::CLIENT_BURST;
use super::*;

#[tokio::test]
async fn checks_are_throttled_per_client_and_remember_only_the_right_password() {
    let gate = PasswordGate::new("a-right-password-here".into()).await;
    let client = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(
        gate.check(client, false, "a-right-password-here", "basic")
            .await,
        Verdict::Right
    );
    // The remembered password costs no throttle cell...
    for _ in 0..(CLIENT_BURST * 2) {
        assert_eq!(
            gate.check(client, false, "a-right-password-here", "basic")
                .await,
            Verdict::Right
        );
    }
    // ...while wrong ones do, and the limit then refuses the right one too.
    let mut wrong = 0;
    let mut throttled = 0;
    for i in 0..(CLIENT_BURST + 5) {
        match gate
            .check(client, false, &format!("a-long-wrong-guess-{i}"), "basic")
            .await
        {
            Verdict::Wrong => wrong += 1,
            Verdict::Throttled(wait) => {
                assert!(wait > Duration::ZERO);
                throttled += 1;
            }
            Verdict::Right => panic!("a guess verified"),
        }
    }
    assert_eq!((wrong, throttled), (CLIENT_BURST - 1, 6));
    // Another client is not throttled by this one.
    let other = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
    assert_eq!(
        gate.check(other, false, "another-long-wrong-guess", "form")
            .await,
        Verdict::Wrong
    );
    // Too short to be any accepted password: wrong, and no throttle cell spent.
    assert_eq!(
        gate.check(other, false, "short", "form").await,
        Verdict::Wrong
    );
}

const RIGHT: &str = "a-right-password-here";

/// Empties the global bucket as guesses from many other addresses would.
fn empty_the_global_bucket(gate: &PasswordGate) {
    for i in 0u32.. {
        let elsewhere = IpAddr::V4(Ipv4Addr::from_bits(0x0a00_0000 + i));
        if gate.throttle.admit(elsewhere, false).is_err() {
            break;
        }
    }
}

#[tokio::test]
async fn a_too_short_password_from_the_admins_address_leaves_the_admin_signed_in() {
    let gate = PasswordGate::new(RIGHT.into()).await;
    let admin = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
    assert_eq!(
        gate.check(admin, false, RIGHT, "basic").await,
        Verdict::Right
    );
    empty_the_global_bucket(&gate);
    // Someone behind the same address sends what cannot be any password, for free...
    assert_eq!(gate.check(admin, false, "x", "basic").await, Verdict::Wrong);
    // ...and the admin's API client, which has no cookie, is still let in.
    assert_eq!(
        gate.check(admin, false, RIGHT, "basic").await,
        Verdict::Right
    );
}

#[tokio::test]
async fn while_an_address_is_throttled_the_right_password_is_throttled_too() {
    let gate = PasswordGate::new(RIGHT.into()).await;
    let shared = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 8)));
    // The admin signs in (one cell); a guesser behind the same address spends all but one of
    // the others...
    assert_eq!(
        gate.check(shared, false, RIGHT, "basic").await,
        Verdict::Right
    );
    for i in 2..CLIENT_BURST {
        let guess = format!("a-long-wrong-guess-{i}");
        assert_eq!(
            gate.check(shared, false, &guess, "basic").await,
            Verdict::Wrong
        );
    }
    // ...the admin's client spends the last one and is signed in again...
    assert_eq!(
        gate.check(shared, false, RIGHT, "basic").await,
        Verdict::Right
    );
    // ...and from now on, until a cell comes back, a guess learns nothing: wrong or right,
    // the answer is the same.
    let wrong = gate
        .check(shared, false, "another-wrong-guess", "basic")
        .await;
    let right = gate.check(shared, false, RIGHT, "basic").await;
    assert!(matches!(wrong, Verdict::Throttled(_)), "{wrong:?}");
    assert!(matches!(right, Verdict::Throttled(_)), "{right:?}");
}

/// Takes every argon2 slot: a check admitted meanwhile waits in `verify`, past the throttle,
/// until the permit is dropped.
async fn hold_every_argon2_slot(gate: &Arc<PasswordGate>) -> tokio::sync::OwnedSemaphorePermit {
    let slots = gate.checks.available_permits() as u32;
    gate.checks.clone().acquire_many_owned(slots).await.unwrap()
}

/// The admin's right password from `client`, checked in a task of its own that has been
/// admitted by the throttle (with every argon2 slot held, it then waits in `verify`).
async fn admin_check_in_flight(
    gate: &Arc<PasswordGate>,
    client: Option<IpAddr>,
) -> tokio::task::JoinHandle<Verdict> {
    let check = tokio::spawn({
        let gate = gate.clone();
        async move { gate.check(client, false, RIGHT, "basic").await }
    });
    tokio::task::yield_now().await;
    check
}

#[tokio::test]
async fn a_password_longer_than_any_accepted_is_wrong_at_once_and_costs_no_cell() {
    let gate = Arc::new(PasswordGate::new(RIGHT.into()).await);
    let client = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)));
    let too_long = format!("{RIGHT}{}", "x".repeat(crate::config::MAX_PASSWORD_BYTES));
    // With every argon2 slot taken, a check that needed one would wait for it.
    let slots = hold_every_argon2_slot(&gate).await;
    for _ in 0..CLIENT_BURST {
        let check = gate.check(client, false, &too_long, "form");
        let verdict = tokio::time::timeout(Duration::from_secs(10), check).await;
        assert_eq!(verdict, Ok(Verdict::Wrong), "answered without argon2");
    }
    drop(slots);
    // None of them took a cell: the client still has its whole burst.
    for i in 0..CLIENT_BURST {
        let guess = format!("a-long-wrong-guess-{i}");
        let verdict = gate.check(client, false, &guess, "form").await;
        assert_eq!(verdict, Verdict::Wrong, "guess {i}");
    }
    let verdict = gate
        .check(client, false, "a-long-wrong-guess", "form")
        .await;
    assert!(matches!(verdict, Verdict::Throttled(_)), "{verdict:?}");
}

/// Brings `shared` to: the admin's client signed in by spending the address's last cell.
async fn admin_signed_in_with_no_cell_left(gate: &PasswordGate, shared: Option<IpAddr>) {
    assert_eq!(
        gate.check(shared, false, RIGHT, "basic").await,
        Verdict::Right
    );
    for i in 2..CLIENT_BURST {
        let guess = format!("a-long-wrong-guess-{i}");
        assert_eq!(
            gate.check(shared, false, &guess, "basic").await,
            Verdict::Wrong
        );
    }
    assert_eq!(
        gate.check(shared, false, RIGHT, "basic").await,
        Verdict::Right
    );
}

/// Review (adversarial): the admin's check was admitted with cells left, and its argon2 is
/// still running when a guesser sharing the address empties the bucket and is throttled
/// (which ends the address's exemption); the admin's check then ends and must not sign the
/// address in again, or the guesser's next request gets a quick yes for the right password.
#[tokio::test]
async fn review_a_check_that_ends_after_its_address_was_throttled_does_not_sign_it_in() {
    let gate = Arc::new(PasswordGate::new(RIGHT.into()).await);
    let shared = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)));
    let key = throttle::client_key(shared);
    // Every argon2 slot busy: the admin's check waits in `verify`, past the throttle.
    let busy = hold_every_argon2_slot(&gate).await;
    let admin = admin_check_in_flight(&gate, shared).await;
    // The guesser's checks in flight take the other cells, and the next one is throttled.
    while gate.throttle.admit(key, false).is_ok() {}
    let throttled = gate
        .check(shared, false, "a-long-wrong-guess", "basic")
        .await;
    assert!(matches!(throttled, Verdict::Throttled(_)), "{throttled:?}");
    drop(busy);
    assert_eq!(admin.await.unwrap(), Verdict::Right);
    let right = gate.check(shared, false, RIGHT, "basic").await;
    assert!(
        matches!(right, Verdict::Throttled(_)),
        "right password, throttled: {right:?}"
    );
}

/// Review (adversarial): while the admin's check is in argon2 (admitted with cells left), a
/// guesser sharing the address spends the other cells on requests the EMPTY GLOBAL bucket
/// refuses at once (each takes its per-client cell first, and none is a per-client refusal).
/// The admin's check then ends and signs in an address with no cell left: the guesser's next
/// request gets a quick yes for the right password and 429 for a wrong one.
#[tokio::test]
async fn review_a_check_that_ends_after_its_address_spent_its_last_cell_does_not_sign_it_in() {
    let gate = Arc::new(PasswordGate::new(RIGHT.into()).await);
    let shared = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11)));
    let busy = hold_every_argon2_slot(&gate).await;
    let admin = admin_check_in_flight(&gate, shared).await;
    empty_the_global_bucket(&gate);
    for i in 1..CLIENT_BURST {
        let guess = format!("a-long-wrong-guess-{i}");
        let verdict = gate.check(shared, false, &guess, "basic").await;
        assert!(matches!(verdict, Verdict::Throttled(_)), "{verdict:?}");
    }
    drop(busy);
    assert_eq!(admin.await.unwrap(), Verdict::Right);
    let right = gate.check(shared, false, RIGHT, "basic").await;
    assert!(
        matches!(right, Verdict::Throttled(_)),
        "right password, no cell left: {right:?}"
    );
}

/// Review (adversarial): the admin is signed in (its API client answered at once); a guesser
/// sharing the address sends wrong guesses that take every cell and wait for argon2 (their
/// "wrong" has not ended the exemption yet). The address has no cell left, yet its next
/// request gets a quick yes for the right password, and 429 for a wrong one.
#[tokio::test]
async fn review_guesses_in_flight_that_take_the_last_cell_end_the_exemption() {
    let gate = Arc::new(PasswordGate::new(RIGHT.into()).await);
    let shared = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 12)));
    assert_eq!(
        gate.check(shared, false, RIGHT, "basic").await,
        Verdict::Right
    );
    let busy = hold_every_argon2_slot(&gate).await;
    let guesses: Vec<_> = (1..CLIENT_BURST)
        .map(|i| {
            let gate = gate.clone();
            tokio::spawn(async move {
                let guess = format!("a-long-wrong-guess-{i}");
                gate.check(shared, false, &guess, "basic").await
            })
        })
        .collect();
    // Each guess takes its cell before it waits for argon2.
    for _ in 0..CLIENT_BURST {
        tokio::task::yield_now().await;
    }
    let right = gate.check(shared, false, RIGHT, "basic").await;
    drop(busy);
    for guess in guesses {
        assert_eq!(guess.await.unwrap(), Verdict::Wrong);
    }
    assert!(
        matches!(right, Verdict::Throttled(_)),
        "right password, no cell left: {right:?}"
    );
}

/// Review (adversarial): a flood of checks, half of whose requests are dropped mid-check (a
/// client that gives up), never holds more argon2 working memories than there are permits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_dropped_checks_do_not_grow_the_working_memory_past_the_permits() {
    let gate = Arc::new(PasswordGate::new(RIGHT.into()).await);
    let slots = gate.checks.available_permits();
    let flood = |from: u32| -> Vec<_> {
        (from..from + 4 * slots as u32)
            .map(|i| {
                let gate = gate.clone();
                let client = Some(IpAddr::V4(Ipv4Addr::from_bits(0x0a01_0000 + i)));
                tokio::spawn(async move {
                    gate.check(client, false, "a-long-wrong-guess", "basic")
                        .await
                })
            })
            .collect()
    };
    let first = flood(0);
    tokio::task::yield_now().await;
    for (i, check) in first.iter().enumerate() {
        if i % 2 == 0 {
            check.abort();
        }
    }
    for check in flood(1000) {
        assert_eq!(check.await.unwrap(), Verdict::Wrong);
    }
    for check in first {
        let _ = check.await;
    }
    // Blocking runs of aborted checks end on their own: wait until every permit is back.
    drop(gate.checks.acquire_many(slots as u32).await.unwrap());
    let pooled = gate.memory.0.lock().unwrap().len();
    assert!(
        (1..=slots).contains(&pooled),
        "{pooled} working memories for {slots} permits"
    );
}

/// Review (adversarial): the guesser's FIRST request after the admin spent the last cell is
/// answered by the memo when it is the right password (a quick yes, no cell), while a wrong
/// one gets 429: one guess answered yes/no with no cell left to the address.
#[tokio::test]
async fn review_with_no_cell_left_the_first_guess_gets_the_same_answer_right_or_wrong() {
    let shared = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)));
    let (one, other) = (
        PasswordGate::new(RIGHT.into()).await,
        PasswordGate::new(RIGHT.into()).await,
    );
    admin_signed_in_with_no_cell_left(&one, shared).await;
    admin_signed_in_with_no_cell_left(&other, shared).await;
    let wrong = one
        .check(shared, false, "another-wrong-guess", "basic")
        .await;
    let right = other.check(shared, false, RIGHT, "basic").await;
    assert!(matches!(wrong, Verdict::Throttled(_)), "{wrong:?}");
    assert!(
        matches!(right, Verdict::Throttled(_)),
        "right password, no cell left: {right:?}"
    );
}
