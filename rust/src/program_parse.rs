//! The text form's parser (SPEC §2.2, §2.3): headers, op lines with their `until` and `->`
//! assertions. A child of `program.rs`.

use super::*;

pub fn parse_u32(s: &str) -> Option<u32> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if h.is_empty() || h.len() > 8 {
            return None;
        }
        u32::from_str_radix(h, 16).ok()
    } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

pub fn parse_page(s: &str) -> Option<u8> {
    PAGE_NAMES.iter().position(|n| *n == s).map(|i| i as u8)
}

fn parse_addr(s: &str) -> Result<Addr, String> {
    let (p, w) = s.split_once('.').ok_or_else(|| format!("bad address '{s}' (expected PAGE.W)"))?;
    let page = parse_page(p).ok_or_else(|| format!("unknown page '{p}'"))?;
    let word: u8 = match w {
        "0" => 0,
        "1" => 1,
        "2" => 2,
        "3" => 3,
        _ => return Err(format!("bad word '{w}' in '{s}' (0..3)")),
    };
    Ok(Addr { page, word })
}

fn parse_id(s: &str, prefix: char) -> Option<u32> {
    let rest = s.strip_prefix(prefix)?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) || rest.len() > 10 {
        return None;
    }
    let n: u32 = rest.parse().ok()?;
    (n >= 1).then_some(n)
}

fn parse_thread(s: &str) -> Option<(u32, u32)> {
    let (p, t) = s.split_once('.')?;
    Some((parse_id(p, 'P')?, parse_id(t, 'T')?))
}

fn parse_value(s: &str) -> Result<u32, String> {
    parse_u32(s).ok_or_else(|| format!("bad value '{s}'"))
}

pub fn parse_outcome(s: &str) -> Result<Outcome, String> {
    Ok(match s {
        "ok" => Outcome::Ok,
        "SEGV" => Outcome::Segv,
        "EAGAIN" => Outcome::Eagain,
        "blocked" => Outcome::Blocked,
        "EBUSY" => Outcome::Ebusy,
        "EFAULT" => Outcome::Efault,
        "ESRCH" => Outcome::Esrch,
        "EINVAL" => Outcome::Einval,
        "paused" => Outcome::Paused,
        _ => {
            if let Some(v) = parse_u32(s) {
                Outcome::Value(v)
            } else if let Some((p, t)) = parse_thread(s) {
                Outcome::Thread(p, t)
            } else if let Some(p) = parse_id(s, 'P') {
                Outcome::Pid(p)
            } else {
                return Err(format!("bad outcome '{s}'"));
            }
        }
    })
}

fn parse_assertion(s: &str) -> Result<Assertion, String> {
    let toks: Vec<&str> = s.split_whitespace().collect();
    match toks.as_slice() {
        [o] => Ok(Assertion { outcome: parse_outcome(o)?, woke: None }),
        [o, "woke", list] => {
            let mut woke = Vec::new();
            for t in list.split(',') {
                woke.push(parse_thread(t).ok_or_else(|| format!("bad thread '{t}' in wake list"))?);
            }
            woke.sort_unstable();
            Ok(Assertion { outcome: parse_outcome(o)?, woke: Some(woke) })
        }
        _ => Err(format!("bad outcome assertion '{s}'")),
    }
}

fn nargs(toks: &[&str], n: usize, usage: &str) -> Result<(), String> {
    if toks.len() != n {
        Err(format!("usage: cpuN {usage}"))
    } else {
        Ok(())
    }
}

fn page_arg(s: &str) -> Result<u8, String> {
    parse_page(s).ok_or_else(|| format!("unknown page '{s}'"))
}

/// Each operation: its name, how many arguments it takes, and its usage.
const USAGE: [(&str, usize, &str); 19] = [
    ("switch", 1, "switch Pp.Tt|idle"),
    ("load", 1, "load PAGE.W"),
    ("store", 2, "store PAGE.W VALUE"),
    ("fork", 0, "fork"),
    ("spawn", 0, "spawn"),
    ("exit", 0, "exit"),
    ("umtx_sleep", 2, "umtx_sleep PAGE.W VALUE"),
    ("umtx_wakeup", 1, "umtx_wakeup PAGE.W"),
    ("procfs_read", 2, "procfs_read Pn PAGE.W"),
    ("procfs_write", 3, "procfs_write Pn PAGE.W VALUE"),
    ("madvise", 2, "madvise PAGE dontneed"),
    ("mprotect", 2, "mprotect PAGE r|rw"),
    ("munmap", 1, "munmap PAGE"),
    ("mmap", 1, "mmap PAGE"),
    ("msync", 1, "msync PAGE"),
    ("mremap", 2, "mremap PAGE TO"),
    ("pageout", 2, "pageout Pn PAGE"),
    ("resume", 0, "resume [until POINT]"),
    ("ipi", 0, "ipi"),
];

fn parse_op(toks: &[&str]) -> Result<Op, String> {
    let (name, a) = (toks[0], &toks[1..]);
    let Some(&(_, n, usage)) = USAGE.iter().find(|u| u.0 == name) else {
        return Err(format!("unknown operation '{name}'"));
    };
    nargs(a, n, usage)?;
    let pid = |s: &str| parse_id(s, 'P').ok_or_else(|| format!("bad pid '{s}'"));
    Ok(match name {
        "switch" if a[0] == "idle" => Op::Switch(Target::Idle),
        "switch" => {
            let (p, t) = parse_thread(a[0]).ok_or_else(|| format!("bad thread '{}'", a[0]))?;
            Op::Switch(Target::Thread(p, t))
        }
        "load" => Op::Load(parse_addr(a[0])?),
        "store" => Op::Store(parse_addr(a[0])?, parse_value(a[1])?),
        "fork" => Op::Fork,
        "spawn" => Op::Spawn,
        "exit" => Op::Exit,
        "umtx_sleep" => Op::UmtxSleep(parse_addr(a[0])?, parse_value(a[1])?),
        "umtx_wakeup" => Op::UmtxWakeup(parse_addr(a[0])?),
        "procfs_read" => Op::ProcfsRead(pid(a[0])?, parse_addr(a[1])?),
        "procfs_write" => Op::ProcfsWrite(pid(a[0])?, parse_addr(a[1])?, parse_value(a[2])?),
        "madvise" => {
            let pg = page_arg(a[0])?;
            if a[1] != "dontneed" {
                return Err(format!("bad madvise advice '{}' (dontneed)", a[1]));
            }
            Op::Madvise(pg)
        }
        "mprotect" => {
            let pg = page_arg(a[0])?;
            let w = match a[1] {
                "r" => false,
                "rw" => true,
                _ => return Err(format!("bad protection '{}' (r or rw)", a[1])),
            };
            Op::Mprotect(pg, w)
        }
        "munmap" => Op::Munmap(page_arg(a[0])?),
        "mmap" => Op::Mmap(page_arg(a[0])?),
        "msync" => Op::Msync(page_arg(a[0])?),
        "mremap" => Op::Mremap(page_arg(a[0])?, page_arg(a[1])?),
        "pageout" => Op::Pageout(pid(a[0])?, page_arg(a[1])?),
        "resume" => Op::Resume,
        _ => Op::Ipi,
    })
}

/// Parses the text form. Checks syntax only; CPU numbers are checked against the hardware
/// by [`Program::check_cpus`] once the effective hardware is known.
pub fn parse(text: &str) -> Result<Program, InputError> {
    let mut prog = Program::default();
    for (i, raw) in text.lines().enumerate() {
        let ln = i + 1;
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (body, assertion) = match line.split_once("->") {
            Some((b, a)) => (b.trim(), Some(a.trim())),
            None => (line, None),
        };
        let toks: Vec<&str> = body.split_whitespace().collect();
        let first = toks[0];
        if first == "hw" || first == "kernel" || first == "expect" || first == "os" {
            if !prog.steps.is_empty() {
                return err(ln, format!("header line '{first}' after the first op line"));
            }
            if assertion.is_some() {
                return err(ln, "a header line cannot carry '->'");
            }
            parse_header(&mut prog, ln, &toks)?;
            continue;
        }
        let step = parse_step(ln, toks)?;
        let a = match assertion {
            Some(a) => Some(parse_assertion(a).map_err(|m| InputError { line: ln, msg: m })?),
            None => None,
        };
        prog.steps.push(step);
        prog.asserts.push(a);
        prog.lines.push(ln);
    }
    Ok(prog)
}

/// The canonical name of kernel `name` (a `KERNEL+ACTION` variant is put in one order), or the
/// line's error.
fn kernel_name(ln: usize, name: &str) -> Result<String, InputError> {
    crate::kernel::resolve(name).map(|k| k.name.to_string()).map_err(|msg| InputError { line: ln, msg })
}

/// A header line (`hw`, `kernel`, `os`, `expect`) into `prog`.
fn parse_header(prog: &mut Program, ln: usize, toks: &[&str]) -> Result<(), InputError> {
    match toks[0] {
        "hw" => {
            let spec = HwSpec::parse(&toks[1..].join(" ")).map_err(|m| InputError { line: ln, msg: m })?;
            prog.hw = prog.hw.overlay(spec);
        }
        "kernel" => {
            if toks.len() != 2 {
                return err(ln, "usage: kernel NAME");
            }
            prog.kernel = Some(kernel_name(ln, toks[1])?);
        }
        "os" => {
            if toks.len() != 2 || !matches!(toks[1], "dragonfly" | "linux") {
                return err(ln, "usage: os dragonfly | os linux");
            }
            prog.os = Some(toks[1].to_string());
        }
        _ => {
            let mut e = match toks {
                [_, k, "clean"] => Expect { kernel: k.to_string(), verdict: None },
                [_, k, kind, step] => {
                    let kind = Kind::from_name(kind)
                        .ok_or_else(|| InputError { line: ln, msg: format!("unknown violation kind '{kind}'") })?;
                    let st: u32 = step
                        .parse()
                        .ok()
                        .filter(|s| *s >= 1)
                        .ok_or_else(|| InputError { line: ln, msg: format!("bad step '{step}'") })?;
                    Expect { kernel: k.to_string(), verdict: Some((kind, st)) }
                }
                _ => return err(ln, "usage: expect KERNEL clean | expect KERNEL KIND STEP"),
            };
            e.kernel = kernel_name(ln, &e.kernel)?;
            prog.expects.push(e);
        }
    }
    Ok(())
}

/// An op line's tokens (`cpuN OP ARGS [until POINT]`, the assertion split off).
fn parse_step(ln: usize, mut toks: Vec<&str>) -> Result<Step, InputError> {
    let first = toks[0];
    let cpu = first
        .strip_prefix("cpu")
        // `cpu00`, `cpu01`: one spelling per CPU, as the core prints them
        .filter(|d| !d.is_empty() && d.len() <= 2 && d.bytes().all(|b| b.is_ascii_digit()) && !(d.len() > 1 && d.starts_with('0')))
        .and_then(|d| d.parse::<u8>().ok())
        .ok_or_else(|| InputError { line: ln, msg: format!("expected cpuN, hw, kernel, os or expect, got '{first}'") })?;
    if toks.len() < 2 {
        return err(ln, "missing operation after cpu");
    }
    let mut until = None;
    if toks.len() >= 2 && toks[toks.len() - 2] == "until" {
        let name = toks[toks.len() - 1];
        let p = Point::from_name(name)
            .ok_or_else(|| InputError { line: ln, msg: format!("unknown yield point '{name}' (points: {})", points_text(u16::MAX)) })?;
        until = Some(p);
        toks.truncate(toks.len() - 2);
        if toks.len() < 2 {
            return err(ln, "missing operation before 'until'");
        }
    }
    let op = parse_op(&toks[1..]).map_err(|m| InputError { line: ln, msg: m })?;
    if let Some(p) = until {
        if op == Op::Ipi {
            return err(ln, "ipi takes no 'until'");
        }
        // vm_fault_page's pmap_enter exists in some kernels only: checked when run.
        if op != Op::Resume && op.points(true) & p.bit() == 0 {
            let name = toks[1];
            return err(ln, format!("{name} has no yield point '{}' (its points: {})", p.name(), points_text(op.points(true))));
        }
    }
    Ok(Step { cpu, op, until })
}
