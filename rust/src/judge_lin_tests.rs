//! SPEC §4.1's rule on hand-built histories (readings R1-R4), the verdicts derived by hand
//! from the rule before these ran: the judge alone, no kernel.

use super::*;
use crate::program::parse;

const T1: (u32, u32) = (1, 1);
const T2: (u32, u32) = (1, 2);
const T3: (u32, u32) = (1, 3);

fn step(line: &str) -> Step {
    parse(line).expect("a valid line").steps[0]
}
fn obs(outcome: Outcome, woke: &[(u32, u32)]) -> Observed {
    Observed { outcome, woke: woke.to_vec() }
}
fn plain(line: &str, actor: (u32, u32), outcome: Outcome, woke: &[(u32, u32)]) -> Event {
    Event::Plain { step: step(line), actor: Some(actor), obs: obs(outcome, woke) }
}
fn start(line: &str, actor: (u32, u32)) -> Event {
    let s = step(line);
    Event::Start { cpu: s.cpu, step: s, actor: Some(actor), woke: Vec::new() }
}
fn end(cpu: u8, outcome: Outcome, woke: &[(u32, u32)]) -> Event {
    Event::End { cpu, obs: obs(outcome, woke) }
}
/// The first violation over the lines: (kind, line).
fn judge(events: Vec<Event>) -> Option<(Kind, u32)> {
    let mut lin = Lin::new();
    for (i, ev) in events.into_iter().enumerate() {
        if let Some(v) = lin.line(i as u32 + 1, ev) {
            return Some((v.kind, v.step));
        }
    }
    None
}

#[test]
fn spec_worked_example_is_a_lost_wakeup_at_the_sleeps_completion() {
    // sleep first: blocked is right and the wakeup owes a wake never named; sleep later:
    // EBUSY was due. The most specific: lost-wakeup, at line 4.
    let h = vec![
        start("cpu1 umtx_sleep data0.0 0x0 until sleep", T2),
        plain("cpu0 store data0.0 0x1", T1, Outcome::Ok, &[]),
        plain("cpu0 umtx_wakeup data0.0", T1, Outcome::Ok, &[]),
        end(1, Outcome::Blocked, &[]),
    ];
    assert_eq!(judge(h), Some((Kind::LostWakeup, 4)));
}

#[test]
fn the_same_sleep_returning_ebusy_is_linearizable() {
    let h = vec![
        start("cpu1 umtx_sleep data0.0 0x0 until sleep", T2),
        plain("cpu0 store data0.0 0x1", T1, Outcome::Ok, &[]),
        plain("cpu0 umtx_wakeup data0.0", T1, Outcome::Ok, &[]),
        end(1, Outcome::Ebusy, &[]),
    ];
    assert_eq!(judge(h), None);
}

#[test]
fn an_owed_wake_may_be_named_on_another_line_inside_the_window() {
    // T2 asleep (1); T1's wakeup [2, 4] owes it; a third thread's line (3) names it.
    let h = vec![
        plain("cpu1 umtx_sleep data0.0 0x0", T2, Outcome::Blocked, &[]),
        start("cpu0 umtx_wakeup data0.0 until access", T1),
        plain("cpu2 load data1.0", T3, Outcome::Value(0), &[T2]),
        end(0, Outcome::Ok, &[]),
    ];
    assert_eq!(judge(h), None);
}

#[test]
fn an_owed_wake_not_named_by_the_wakeups_completion_is_lost_there() {
    let h = vec![
        plain("cpu1 umtx_sleep data0.0 0x0", T2, Outcome::Blocked, &[]),
        start("cpu0 umtx_wakeup data0.0 until access", T1),
        end(0, Outcome::Ok, &[]),
        plain("cpu2 load data1.0", T3, Outcome::Value(0), &[T2]),
    ];
    assert_eq!(judge(h), Some((Kind::LostWakeup, 3)));
}

#[test]
fn a_pending_wakeup_may_be_the_one_that_owes_until_it_completes() {
    // (../shared judge case 2's shape) W1 [2, 5] and W2 [3, 4] overlap after T2's sleep:
    // at 4 the pending W1 may have woken T2 (owing, not yet due); at 5 whichever came
    // first owes a wake never named.
    let h = vec![
        plain("cpu2 umtx_sleep data0.0 0x0", T2, Outcome::Blocked, &[]),
        start("cpu0 umtx_wakeup data0.0 until access", T1),
        start("cpu1 umtx_wakeup data0.0 until access", T3),
        end(1, Outcome::Ok, &[]),
        end(0, Outcome::Ok, &[]),
    ];
    assert_eq!(judge(h), Some((Kind::LostWakeup, 5)));
}

#[test]
fn a_wakeup_overlapping_a_sleep_may_take_effect_first() {
    // (judge case 1's shape) the sleep [1, 3] and the wakeup [2, 4]: the wakeup first
    // owes nothing.
    let h = vec![
        start("cpu1 umtx_sleep data0.0 0x0 until sleep", T2),
        start("cpu0 umtx_wakeup data0.0 until access", T1),
        end(1, Outcome::Blocked, &[]),
        end(0, Outcome::Ok, &[]),
    ];
    assert_eq!(judge(h), None);
}

#[test]
fn naming_a_thread_whose_sleep_returned_ebusy_is_an_outcome_violation() {
    // R1: T2's sleep [1, 3] returned EBUSY at 3; line 4 names it, while the wakeup [2, 5]
    // is still in flight (so the window is open).
    let h = vec![
        start("cpu1 umtx_sleep data0.0 0x1 until sleep", T2),
        start("cpu0 umtx_wakeup data0.0 until access", T1),
        end(1, Outcome::Ebusy, &[]),
        plain("cpu2 load data1.0", T3, Outcome::Value(0), &[T2]),
    ];
    assert_eq!(judge(h), Some((Kind::Outcome, 4)));
}

#[test]
fn after_a_32_line_the_kind_is_the_most_specific_failure_by_the_line() {
    // (readings R4, literal) the worked example with the sleep still in flight, then a spawn
    // returning the wrong thread (outcome): in the orders with the sleep first, the wakeup
    // at 3 owed it a wake never named; the most specific failure by line 4 is lost-wakeup.
    let h = vec![
        start("cpu1 umtx_sleep data0.0 0x0 until sleep", T2),
        plain("cpu0 store data0.0 0x1", T1, Outcome::Ok, &[]),
        plain("cpu0 umtx_wakeup data0.0", T1, Outcome::Ok, &[]),
        plain("cpu0 spawn", T1, Outcome::Thread(1, 9), &[]),
    ];
    assert_eq!(judge(h), Some((Kind::LostWakeup, 4)));
    // Without a §3.2 line the sequential order holds (SPEC 4: outcome kinds, then
    // lost-wakeup): a wakeup returning EBUSY that also leaves its sleeper unnamed.
    let h = vec![
        plain("cpu1 umtx_sleep data0.0 0x0", T2, Outcome::Blocked, &[]),
        plain("cpu0 umtx_wakeup data0.0", T1, Outcome::Ebusy, &[]),
    ];
    assert_eq!(judge(h.clone()), Some((Kind::Outcome, 2)));
    // ... and after one, the same two lines give the more specific lost-wakeup.
    let mut after = vec![
        start("cpu2 umtx_sleep data1.0 0x1 until sleep", T3),
        end(2, Outcome::Ebusy, &[]),
    ];
    after.extend(h);
    assert_eq!(judge(after), Some((Kind::LostWakeup, 4)));
}

#[test]
fn a_sleeper_in_flight_may_be_named() {
    // R1: T2's sleep [1, 4] started before line 3 named it (tsleep_interlock's shape).
    let h = vec![
        start("cpu1 umtx_sleep data0.0 0x0 until sleep", T2),
        start("cpu0 umtx_wakeup data0.0 until access", T1),
        end(0, Outcome::Ok, &[T2]),
        end(1, Outcome::Blocked, &[]),
    ];
    assert_eq!(judge(h), None);
}

#[test]
fn a_copy_is_the_whole_judge_window_and_fast_path_included() {
    // explore copies a judge per line (judge_canon.rs): a field left out carries one branch's
    // history into another (the kept fast path was, once: every line fell to the search).
    let mut a = Lin::new();
    assert_eq!(a.line(1, start("cpu1 umtx_sleep data0.0 0x0 until sleep", T2)), None);
    assert_eq!(a.line(2, plain("cpu0 store data0.0 0x1", T1, Outcome::Ok, &[])), None);
    assert!(!a.fast.is_empty() && !a.window.is_empty());
    let mut b = Lin::new();
    assert_eq!(b.line(1, plain("cpu0 store data1.0 0x2", T1, Outcome::Ok, &[])), None);
    b.copy_from(&a);
    assert_eq!(format!("{b:?}"), format!("{a:?}"));
}
