//! The byte form's encoder: for each text line the record that decodes back to it in the
//! machine state it runs in (a child of `codec.rs`, which holds the choices both sides make).

use super::*;
use crate::program::InputError;

pub fn encode_header(hw: &crate::hw::Hw) -> [u8; 2] {
    let tagged = if hw.mode == TlbMode::Tagged { 8 } else { 0 };
    [((hw.cpus - 1) & 7) | tagged, (hw.tlb - 1) & 63]
}

/// The record that decodes to `s` in machine state `m`, or why `s` is not applicable there.
pub fn encode_step(m: &Machine, s: &Step, out: &mut Vec<u8>) -> Result<(), String> {
    let (kind, pw, value, pid) = record_fields(m, s)?;
    let (cands, n) = match kind {
        RESUME => resumable(m),
        IPI => ipi_cpus(m),
        SWITCH => free_cpus(m),
        EXIT => exit_cpus(m), // quiet: no exit has begun, so these are the running CPUs
        PAGEOUT => pageout_cpus(m),
        _ => busy_cpus(m),
    };
    let sel = match cands[..n].iter().position(|&c| c == s.cpu) {
        Some(i) => i,
        None => return Err(m.check_applicable(s).err().map_or_else(|| format!("cpu{} cannot run this line", s.cpu), |e| e.0)),
    };
    let ub = until_field(m, s)?;
    // SPEC §3.4's ops share the EXT slot; the value byte names which.
    let (kind, value) = if kind >= MUNMAP { (EXT, (kind - MUNMAP) as u32) } else { (kind, value) };
    let ext = kind == EXT;
    out.push(kind | ((sel as u8) << 4));
    out.push(pw);
    let assigned = m.pids_assigned();
    let tb_direct = pid >= 1 && pid <= assigned + 1 && pid - 1 < 0xff;
    let vb = match s.op {
        Op::UmtxSleep(a, v) => {
            let pid = m.cpus[s.cpu as usize].running.map_or(0, |r| r.0);
            if v == peek_word(m, pid, a) {
                SLEEP_CURRENT
            } else if v < SLEEP_CURRENT as u32 {
                v as u8
            } else {
                0xff
            }
        }
        _ if value < 0xff => value as u8,
        _ => 0xff,
    };
    out.push(vb);
    let procfs_pid = kind == PREAD || kind == PWRITE || matches!(s.op, Op::Pageout(..));
    out.push(if procfs_pid {
        if tb_direct {
            (pid - 1) as u8
        } else {
            0xff
        }
    } else if ext {
        pid as u8 // mremap's TO
    } else {
        0
    });
    out.push(ub);
    if vb == 0xff {
        out.extend_from_slice(&value.to_le_bytes());
    }
    if procfs_pid && !tb_direct {
        out.extend_from_slice(&pid.to_le_bytes());
    }
    Ok(())
}

/// A line's operation code, address byte, value and pid (or mremap's TO) before the choices
/// that depend on the state.
fn record_fields(m: &Machine, s: &Step) -> Result<(u8, u8, u32, u32), String> {
    let pw_addr = |a: Addr| (a.page << 2) | a.word;
    Ok(match s.op {
        Op::Switch(t) => {
            let pw = match t {
                Target::Idle => 0,
                Target::Thread(p, tid) => match m.runnable().position(|x| x == (p, tid)) {
                    Some(i) => i + 1,
                    None => return Err(format!("P{p}.T{tid} is not runnable")),
                },
            };
            (SWITCH, pw as u8, 0, 0)
        }
        Op::Load(a) => (LOAD, pw_addr(a), 0, 0),
        Op::Store(a, v) => (STORE, pw_addr(a), v, 0),
        Op::Fork => (FORK, 0, 0, 0),
        Op::Spawn => (SPAWN, 0, 0, 0),
        Op::Exit => (EXIT, 0, 0, 0),
        Op::UmtxSleep(a, v) => (SLEEP, pw_addr(a), v, 0),
        Op::UmtxWakeup(a) => (WAKEUP, pw_addr(a), 0, 0),
        Op::ProcfsRead(p, a) => (PREAD, pw_addr(a), 0, p),
        Op::ProcfsWrite(p, a, v) => (PWRITE, pw_addr(a), v, p),
        Op::Madvise(pg) => (MADVISE, pg << 2, 0, 0),
        Op::Mprotect(pg, w) => (if w { MPROT_RW } else { MPROT_R }, pg << 2, 0, 0),
        Op::Resume => (RESUME, 0, 0, 0),
        Op::Ipi => (IPI, 0, 0, 0),
        Op::Munmap(pg) => (MUNMAP, pg << 2, 0, 0),
        Op::Mmap(pg) => (MMAP, pg << 2, 0, 0),
        Op::Mremap(pg, to) => (MREMAP, pg << 2, 0, to as u32),
        Op::Msync(pg) => (MSYNC, pg << 2, 0, 0),
        Op::Pageout(p, pg) => (PAGEOUT, pg << 2, 0, p),
    })
}

/// The `u` byte of line `s`: no `until`, or the one that selects its point in this state.
fn until_field(m: &Machine, s: &Step) -> Result<u8, String> {
    let Some(p) = s.until else { return Ok(0) };
    let op = match s.op {
        Op::Resume => m.cpus[s.cpu as usize].kop.as_ref().map(|k| k.op).unwrap_or(Op::Resume),
        op => op,
    };
    until_byte(m, Step { until: None, ..*s }, &op, p).ok_or_else(|| format!("{} has no yield point '{}'", s, p.name()))
}

/// Encode a program (with its effective hardware and kernel): replays it to know the state
/// each choice is taken in.
pub fn encode(steps: &[Step], lines: &[usize], hw: crate::hw::Hw, kernel: &'static crate::kernel::Kernel) -> Result<Vec<u8>, InputError> {
    let mut out = encode_header(&hw).to_vec();
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<(), InputError> {
        let mut m = Machine::new(hw, kernel);
        for (i, s) in steps.iter().enumerate() {
            let line = lines.get(i).copied().unwrap_or(0);
            encode_step(&m, s, &mut out).map_err(|msg| InputError { line, msg })?;
            m.step(*s).map_err(|e| InputError { line, msg: e.0 })?;
        }
        Ok(())
    }));
    match res {
        Ok(Ok(())) => Ok(out),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(InputError { line: 0, msg: "model assertion while encoding (the program panics the model)".into() }),
    }
}
