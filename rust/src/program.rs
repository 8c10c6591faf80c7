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

/// The text form's parser (its own file; a child module, to build the types above).
#[path = "program_parse.rs"]
mod text;
pub use text::{parse, parse_outcome, parse_page, parse_u32};

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
