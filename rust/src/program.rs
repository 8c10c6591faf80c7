//! Programs: the operations, their outcomes, and the text form (SPEC §2.2, §2.3).

use crate::hw::HwSpec;
use crate::judge::Kind;
use std::fmt;

pub const NPAGES: usize = 9;
pub const NWORDS: usize = 4;
pub const PAGE_NAMES: [&str; NPAGES] = ["data0", "data1", "data2", "data3", "text0", "text1", "shm0", "file0", "hole0"];
pub const FIRST_TEXT: u8 = 4;
pub const SHM: u8 = 6;
/// SPEC §3.4: a shared mapping of the data file, and a page with no mapping at first.
pub const FILE0: u8 = 7;
pub const HOLE0: u8 = 8;

pub fn is_data(page: u8) -> bool {
    page < FIRST_TEXT
}
pub fn is_text(page: u8) -> bool {
    page == 4 || page == 5
}

/// File content of the read-only "executable": word w of text page p.
pub fn text_word(p: u8, w: u8) -> u32 {
    0xf000 + 16 * p as u32 + w as u32
}

/// The data file's initial content (SPEC §3.4): word w of its one page.
pub fn data_file_word(w: u8) -> u32 {
    0xd000 + w as u32
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, PartialOrd, Ord)]
pub struct Addr {
    pub page: u8,
    pub word: u8,
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", PAGE_NAMES[self.page as usize], self.word)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Target {
    Idle,
    Thread(u32, u32),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Op {
    Switch(Target),
    Load(Addr),
    Store(Addr, u32),
    Fork,
    Spawn,
    Exit,
    UmtxSleep(Addr, u32),
    UmtxWakeup(Addr),
    ProcfsRead(u32, Addr),
    ProcfsWrite(u32, Addr, u32),
    Madvise(u8),
    Mprotect(u8, bool),
    /// SPEC §3.4: `munmap PAGE`, `mmap PAGE`, `mremap PAGE TO`, `msync PAGE`, `pageout Pn PAGE`.
    Munmap(u8),
    Mmap(u8),
    Mremap(u8, u8),
    Msync(u8),
    Pageout(u32, u8),
    /// `cpuN resume`: run the op in flight on cpuN on (SPEC §3.2).
    Resume,
    /// `cpuN ipi`: cpuN takes the invalidations pending for it.
    Ipi,
}

/// Yield points of SPEC §3.2: each is *just before* the named action.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Point {
    Cow,
    PmapEnter,
    IpiWait,
    Access,
    Sleep,
    Retry,
    Enter,
    Wait,
    /// SPEC §3.4: msync/pageout before writing a dirty page out; pageout before freeing it.
    Clean,
    Free,
}

pub const POINTS: [Point; 10] = [
    Point::Cow,
    Point::PmapEnter,
    Point::IpiWait,
    Point::Access,
    Point::Sleep,
    Point::Retry,
    Point::Enter,
    Point::Wait,
    Point::Clean,
    Point::Free,
];

impl Point {
    pub fn name(self) -> &'static str {
        match self {
            Point::Cow => "cow",
            Point::PmapEnter => "pmap_enter",
            Point::IpiWait => "ipi_wait",
            Point::Access => "access",
            Point::Sleep => "sleep",
            Point::Retry => "retry",
            Point::Enter => "enter",
            Point::Wait => "wait",
            Point::Clean => "clean",
            Point::Free => "free",
        }
    }
    pub fn from_name(s: &str) -> Option<Point> {
        POINTS.iter().copied().find(|p| p.name() == s)
    }
    pub fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl Op {
    /// The yield points `op` has (SPEC §3.2's table), as a bit set of `Point::bit`. The
    /// `pmap_enter` of vm_fault_page exists only in kernels that call it (`pre_enter`).
    pub fn points(&self, pre_enter: bool) -> u16 {
        use Point::*;
        let fault = Cow.bit() | PmapEnter.bit() | IpiWait.bit() | Wait.bit();
        let fault_page = Cow.bit() | IpiWait.bit() | Wait.bit() | Access.bit() | if pre_enter { PmapEnter.bit() } else { 0 };
        match self {
            Op::Switch(_) => Enter.bit(),
            Op::Load(_) | Op::Store(..) => fault,
            Op::Fork | Op::Mprotect(..) | Op::Madvise(_) | Op::Exit | Op::Munmap(_) | Op::Mmap(_) => {
                IpiWait.bit() | Wait.bit()
            }
            Op::Mremap(..) => IpiWait.bit() | Wait.bit() | PmapEnter.bit(),
            Op::Msync(_) => IpiWait.bit() | Wait.bit() | Clean.bit(),
            Op::Pageout(..) => IpiWait.bit() | Wait.bit() | Clean.bit() | Free.bit(),
            Op::Spawn | Op::Resume | Op::Ipi => 0,
            Op::UmtxSleep(..) => fault_page | Sleep.bit(),
            Op::UmtxWakeup(_) | Op::ProcfsRead(..) => fault_page,
            Op::ProcfsWrite(..) => fault_page | Retry.bit(),
        }
    }
}

pub fn points_text(bits: u16) -> String {
    let v: Vec<&str> = POINTS.iter().filter(|p| bits & p.bit() != 0).map(|p| p.name()).collect();
    v.join(", ")
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Step {
    pub cpu: u8,
    pub op: Op,
    /// `until POINT` (on an op line, or on `resume`).
    pub until: Option<Point>,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cpu{} ", self.cpu)?;
        match self.op {
            Op::Switch(Target::Idle) => write!(f, "switch idle"),
            Op::Switch(Target::Thread(p, t)) => write!(f, "switch P{p}.T{t}"),
            Op::Load(a) => write!(f, "load {a}"),
            Op::Store(a, v) => write!(f, "store {a} {v:#x}"),
            Op::Fork => write!(f, "fork"),
            Op::Spawn => write!(f, "spawn"),
            Op::Exit => write!(f, "exit"),
            Op::UmtxSleep(a, v) => write!(f, "umtx_sleep {a} {v:#x}"),
            Op::UmtxWakeup(a) => write!(f, "umtx_wakeup {a}"),
            Op::ProcfsRead(p, a) => write!(f, "procfs_read P{p} {a}"),
            Op::ProcfsWrite(p, a, v) => write!(f, "procfs_write P{p} {a} {v:#x}"),
            Op::Madvise(pg) => write!(f, "madvise {} dontneed", PAGE_NAMES[pg as usize]),
            Op::Mprotect(pg, w) => {
                write!(f, "mprotect {} {}", PAGE_NAMES[pg as usize], if w { "rw" } else { "r" })
            }
            Op::Munmap(pg) => write!(f, "munmap {}", PAGE_NAMES[pg as usize]),
            Op::Mmap(pg) => write!(f, "mmap {}", PAGE_NAMES[pg as usize]),
            Op::Mremap(pg, to) => write!(f, "mremap {} {}", PAGE_NAMES[pg as usize], PAGE_NAMES[to as usize]),
            Op::Msync(pg) => write!(f, "msync {}", PAGE_NAMES[pg as usize]),
            Op::Pageout(p, pg) => write!(f, "pageout P{p} {}", PAGE_NAMES[pg as usize]),
            Op::Resume => write!(f, "resume"),
            Op::Ipi => write!(f, "ipi"),
        }?;
        if let Some(p) = self.until {
            write!(f, " until {}", p.name())?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    Ok,
    Segv,
    Value(u32),
    Pid(u32),
    Thread(u32, u32),
    Eagain,
    Blocked,
    Ebusy,
    Efault,
    Esrch,
    /// mremap to the page it moves (SPEC §3.4).
    Einval,
    /// The line stopped with its op in flight (SPEC §3.2).
    Paused,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Outcome::Ok => write!(f, "ok"),
            Outcome::Segv => write!(f, "SEGV"),
            Outcome::Value(v) => write!(f, "{v:#x}"),
            Outcome::Pid(p) => write!(f, "P{p}"),
            Outcome::Thread(p, t) => write!(f, "P{p}.T{t}"),
            Outcome::Eagain => write!(f, "EAGAIN"),
            Outcome::Blocked => write!(f, "blocked"),
            Outcome::Ebusy => write!(f, "EBUSY"),
            Outcome::Efault => write!(f, "EFAULT"),
            Outcome::Esrch => write!(f, "ESRCH"),
            Outcome::Einval => write!(f, "EINVAL"),
            Outcome::Paused => write!(f, "paused"),
        }
    }
}

/// What one step showed: its outcome and the threads it woke (sorted by pid, tid).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Observed {
    pub outcome: Outcome,
    pub woke: Vec<(u32, u32)>,
}

pub fn fmt_woke(woke: &[(u32, u32)]) -> String {
    let v: Vec<String> = woke.iter().map(|(p, t)| format!("P{p}.T{t}")).collect();
    v.join(",")
}

impl fmt::Display for Observed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.outcome)?;
        if !self.woke.is_empty() {
            write!(f, " woke {}", fmt_woke(&self.woke))?;
        }
        Ok(())
    }
}

/// `-> OUTCOME [woke ...]` written on an op line; the wake list is compared only if written.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Assertion {
    pub outcome: Outcome,
    pub woke: Option<Vec<(u32, u32)>>,
}

impl Assertion {
    pub fn matches(&self, o: &Observed) -> bool {
        self.outcome == o.outcome && self.woke.as_ref().is_none_or(|w| *w == o.woke)
    }
}

impl fmt::Display for Assertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.outcome)?;
        if let Some(w) = &self.woke {
            write!(f, " woke {}", fmt_woke(w))?;
        }
        Ok(())
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Expect {
    pub kernel: String,
    /// None: clean; else the violation kind and step.
    pub verdict: Option<(Kind, u32)>,
}

#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Program {
    pub hw: HwSpec,
    pub kernel: Option<String>,
    /// The `os` header (SPEC §4.2): the oracle's personality. The model is DragonFly's; it
    /// only records the line.
    pub os: Option<String>,
    pub expects: Vec<Expect>,
    pub steps: Vec<Step>,
    pub asserts: Vec<Option<Assertion>>,
    /// 1-based source line of each step (0 for programs that did not come from text).
    pub lines: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct InputError {
    pub line: usize,
    pub msg: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: {}", self.line, self.msg)
        } else {
            write!(f, "{}", self.msg)
        }
    }
}

fn err<T>(line: usize, msg: impl Into<String>) -> Result<T, InputError> {
    Err(InputError { line, msg: msg.into() })
}

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

fn parse_op(toks: &[&str]) -> Result<Op, String> {
    let a = &toks[1..];
    Ok(match toks[0] {
        "switch" => {
            nargs(a, 1, "switch Pp.Tt|idle")?;
            if a[0] == "idle" {
                Op::Switch(Target::Idle)
            } else {
                let (p, t) = parse_thread(a[0]).ok_or_else(|| format!("bad thread '{}'", a[0]))?;
                Op::Switch(Target::Thread(p, t))
            }
        }
        "load" => {
            nargs(a, 1, "load PAGE.W")?;
            Op::Load(parse_addr(a[0])?)
        }
        "store" => {
            nargs(a, 2, "store PAGE.W VALUE")?;
            Op::Store(parse_addr(a[0])?, parse_value(a[1])?)
        }
        "fork" => {
            nargs(a, 0, "fork")?;
            Op::Fork
        }
        "spawn" => {
            nargs(a, 0, "spawn")?;
            Op::Spawn
        }
        "exit" => {
            nargs(a, 0, "exit")?;
            Op::Exit
        }
        "umtx_sleep" => {
            nargs(a, 2, "umtx_sleep PAGE.W VALUE")?;
            Op::UmtxSleep(parse_addr(a[0])?, parse_value(a[1])?)
        }
        "umtx_wakeup" => {
            nargs(a, 1, "umtx_wakeup PAGE.W")?;
            Op::UmtxWakeup(parse_addr(a[0])?)
        }
        "procfs_read" => {
            nargs(a, 2, "procfs_read Pn PAGE.W")?;
            let p = parse_id(a[0], 'P').ok_or_else(|| format!("bad pid '{}'", a[0]))?;
            Op::ProcfsRead(p, parse_addr(a[1])?)
        }
        "procfs_write" => {
            nargs(a, 3, "procfs_write Pn PAGE.W VALUE")?;
            let p = parse_id(a[0], 'P').ok_or_else(|| format!("bad pid '{}'", a[0]))?;
            Op::ProcfsWrite(p, parse_addr(a[1])?, parse_value(a[2])?)
        }
        "madvise" => {
            nargs(a, 2, "madvise PAGE dontneed")?;
            let pg = parse_page(a[0]).ok_or_else(|| format!("unknown page '{}'", a[0]))?;
            if a[1] != "dontneed" {
                return Err(format!("bad madvise advice '{}' (dontneed)", a[1]));
            }
            Op::Madvise(pg)
        }
        "mprotect" => {
            nargs(a, 2, "mprotect PAGE r|rw")?;
            let pg = parse_page(a[0]).ok_or_else(|| format!("unknown page '{}'", a[0]))?;
            let w = match a[1] {
                "r" => false,
                "rw" => true,
                _ => return Err(format!("bad protection '{}' (r or rw)", a[1])),
            };
            Op::Mprotect(pg, w)
        }
        "munmap" | "mmap" | "msync" => {
            nargs(a, 1, &format!("{} PAGE", toks[0]))?;
            let pg = page_arg(a[0])?;
            match toks[0] {
                "munmap" => Op::Munmap(pg),
                "mmap" => Op::Mmap(pg),
                _ => Op::Msync(pg),
            }
        }
        "mremap" => {
            nargs(a, 2, "mremap PAGE TO")?;
            Op::Mremap(page_arg(a[0])?, page_arg(a[1])?)
        }
        "pageout" => {
            nargs(a, 2, "pageout Pn PAGE")?;
            let p = parse_id(a[0], 'P').ok_or_else(|| format!("bad pid '{}'", a[0]))?;
            Op::Pageout(p, page_arg(a[1])?)
        }
        "resume" => {
            nargs(a, 0, "resume [until POINT]")?;
            Op::Resume
        }
        "ipi" => {
            nargs(a, 0, "ipi")?;
            Op::Ipi
        }
        other => return Err(format!("unknown operation '{other}'")),
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

impl Program {
    pub fn check_cpus(&self, cpus: u8) -> Result<(), InputError> {
        for (s, ln) in self.steps.iter().zip(&self.lines) {
            if s.cpu >= cpus {
                return err(*ln, format!("cpu{} beyond the machine's {} CPUs", s.cpu, cpus));
            }
        }
        Ok(())
    }

    pub fn line_of(&self, idx: usize) -> usize {
        self.lines.get(idx).copied().unwrap_or(0)
    }
}
