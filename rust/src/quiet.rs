//! Plain lines on a quiet machine, each op as one call (SPEC §3.2: "a plain line runs to
//! completion with its IPIs delivered at once").
//!
//! Quiet: no op in flight on any CPU, no shootdown record, and the line has no `until`. Then
//! no lock can be held by another op (every lock is an op in flight or a record), no yield
//! point stops the op, and every record the op makes is its own, passed at its `ipi_wait`.
//! `advance` would take exactly the steps below, in this order; these functions take them
//! without a `KOp` value, its phase dispatch and its lock checks, which were a fifth of the
//! plain fuzzing path (issue 13: plain programs within 10% of the pre-§3.2 core). Each
//! function names the phases of `inflight.rs` it stands for; a change there must be made here
//! too (tests/test_concurrency.py's golden traces and the soak's plain programs compare both
//! against the pre-§3.2 core). The yield points passed are recorded in `Machine::arrived` as
//! `KOp::arrived` would be.

use crate::fault::{FaultType, VM_PROT_OVERRIDE_WRITE, VM_PROT_READ, VM_PROT_WRITE};
use crate::machine::{Machine, MAX_PROCS};
use crate::phys::{FrameId, NO_FRAME};
use crate::pmap::Pte;
use crate::program::{Addr, Op, Outcome, Point};
use crate::proc::ThreadState;
use crate::umtx::Sleeper;
use crate::vm_object::ObjType;

/// Why a quiet fault failed (`inflight::Fs::Protection` / `Fs::Dead`).
enum FaultErr {
    Protection,
    Dead,
}

impl Machine {
    /// Whether a line without `until` can take the quiet path now.
    #[inline]
    pub fn quiet(&self) -> bool {
        self.inflight == 0 && self.invals.is_empty() && !self.no_quiet
    }

    /// The shootdowns this op started are acknowledged (its `ipi_wait`, passed at once): on
    /// a quiet machine every record is this CPU's.
    #[inline]
    fn quiet_ipi_wait(&mut self, cpu: usize) {
        if !self.invals.is_empty() {
            self.arrived |= Point::IpiWait.bit();
            self.ipi_wait_pass(cpu);
        }
    }

    /// `op` (not a switch, spawn, mprotect or madvise: those have their own plain paths) by
    /// thread (pid, tid) on `cpu`, the machine quiet.
    pub fn kop_quiet(&mut self, cpu: usize, op: Op, pid: u32, tid: u32) -> Outcome {
        self.arrived = 0;
        match op {
            Op::Load(a) | Op::Store(a, _) => self.user_fault_quiet(cpu, op, pid, a),
            Op::Exit => self.exit_quiet(cpu, pid, Outcome::Ok),
            Op::Fork => self.fork_quiet(cpu, pid),
            Op::ProcfsRead(t, a) | Op::ProcfsWrite(t, a, _) => self.procfs_quiet(cpu, op, t, a),
            Op::UmtxSleep(a, _) | Op::UmtxWakeup(a) => self.umtx_quiet(cpu, op, pid, tid, a),
            _ => unreachable!("no quiet path for {op:?}"),
        }
    }

    /// `Phase::UserFault` and `Phase::UserAccess` after the TLB and the page walk missed (the
    /// caller dropped the TLB entry): fault, then the access again, at most three faults.
    fn user_fault_quiet(&mut self, cpu: usize, op: Op, pid: u32, a: Addr) -> Outcome {
        let write = matches!(op, Op::Store(..));
        let ft = if write { VM_PROT_WRITE } else { VM_PROT_READ };
        let va = a.page;
        let mut tries = 0u8;
        'fault: loop {
            if self.vm_fault_quiet(cpu, pid, va, ft, true).is_err() {
                // SEGV (no sibling can be in the kernel: nothing is in flight).
                return self.exit_quiet(cpu, pid, Outcome::Segv);
            }
            tries += 1;
            if tries >= 3 {
                panic!("user access to page {va} by P{pid} did not converge after vm_fault");
            }
            let f = 'found: {
                if let Some(te) = self.cpus[cpu].tlb.lookup(pid, va) {
                    if !write || te.writable {
                        break 'found te.frame;
                    }
                    self.cpus[cpu].tlb.invalidate(pid, va);
                }
                let pte = self.proc(pid).pmap.pte[va as usize];
                if pte.present() && (!write || pte.writable) {
                    self.tlb_fill(cpu, pid, va, pte);
                    break 'found pte.frame;
                }
                continue 'fault;
            };
            return match op {
                Op::Store(_, v) => {
                    self.write_word(f, a.word, v);
                    Outcome::Ok
                }
                _ => Outcome::Value(self.phys.get(f).words[a.word as usize]),
            };
        }
    }

    /// vm_fault_object's phases `Lookup`, `Cow`, `CowIpiWait`, and with `enter` `PmapEnter`,
    /// `BbmIpiWait`/`EnterIpiWait`: the page found (and entered), and whether the COW ran.
    fn vm_fault_quiet(&mut self, cpu: usize, pid: u32, va: u8, ft: FaultType, enter: bool) -> Result<(FrameId, bool), FaultErr> {
        // Lookup
        if pid as usize > self.procs.len() || !self.proc(pid).alive {
            return Err(FaultErr::Dead);
        }
        let i = self.proc(pid).map.lookup(va);
        let e = self.proc(pid).map.entries[i];
        let prot_write = if ft.override_write { e.max_write } else { e.prot_write };
        if ft.write && !prot_write {
            return Err(FaultErr::Protection);
        }
        let found = self.vm_page_lookup_chain(e.object, e.offset + (va - e.start));
        let mut writable = prot_write;
        let (first, pindex) = if e.needs_copy {
            if ft.write {
                let s = self.vm_object_shadow(e.object, e.offset, e.end - e.start);
                let p = self.proc_mut(pid);
                let em = &mut p.map.entries[i];
                em.object = s;
                em.offset = 0;
                em.needs_copy = false;
                p.map.generation += 1;
                (s, va - e.start)
            } else {
                writable = false;
                (e.object, e.offset + (va - e.start))
            }
        } else {
            (e.object, e.offset + (va - e.start))
        };
        let mut cowed = false;
        let mut unmap_after = NO_FRAME;
        let frame = match found {
            None => {
                let f = self.phys.alloc([0; 4]);
                self.obj_mut(first).pages[pindex as usize] = f;
                f
            }
            Some((o, _, f)) if o == first => f,
            Some((_, _, f)) if !ft.write => {
                // A page of a backing object is mapped read-only.
                writable = false;
                f
            }
            Some((o, oidx, old)) => {
                // Cow
                self.arrived |= Point::Cow.bit();
                let ob = self.obj(o);
                let rename = self.obj(first).backing == Some(o)
                    && ob.otype == ObjType::Anon
                    && ob.ref_count == 1
                    && ob.shadow_count == 1;
                let new = if rename {
                    self.obj_mut(o).pages[oidx as usize] = NO_FRAME;
                    self.obj_mut(first).pages[pindex as usize] = old;
                    old
                } else {
                    let words = self.phys.get(old).words;
                    let new = self.phys.alloc(words);
                    self.obj_mut(first).pages[pindex as usize] = new;
                    if self.kernel.cow_event {
                        self.vm_page_event_cow(old);
                    }
                    if self.kernel.cow_copy_remove_all {
                        if enter && !self.kernel.cow_break_before_make {
                            unmap_after = old;
                        } else {
                            self.pmap_remove_all(cpu, old);
                        }
                    }
                    new
                };
                cowed = true;
                // CowIpiWait
                self.quiet_ipi_wait(cpu);
                new
            }
        };
        if !enter {
            return Ok((frame, cowed));
        }
        // PmapEnter
        self.arrived |= Point::PmapEnter.bit();
        let new = Pte { frame, writable };
        self.dirty.pte = true;
        let old = self.proc(pid).pmap.pte[va as usize];
        if unmap_after != NO_FRAME {
            // `cow-make-before-break`: the new PTE first, then the shootdowns.
            self.proc_mut(pid).pmap.pte[va as usize] = new;
            if old.present() && old != new {
                self.pmap_inval(cpu, pid, va);
            }
            self.pmap_remove_all(cpu, unmap_after);
            self.quiet_ipi_wait(cpu);
        } else if old.present() && old != new {
            if old.frame != new.frame {
                // Break before make: clear, shoot down, then write.
                self.proc_mut(pid).pmap.pte[va as usize] = Pte::ABSENT;
                self.pmap_inval_of(cpu, pid, va, old.frame);
                self.quiet_ipi_wait(cpu);
                self.proc_mut(pid).pmap.pte[va as usize] = new;
            } else {
                self.proc_mut(pid).pmap.pte[va as usize] = new;
                self.pmap_inval(cpu, pid, va);
                self.quiet_ipi_wait(cpu);
            }
        } else {
            self.proc_mut(pid).pmap.pte[va as usize] = new;
        }
        Ok((frame, cowed))
    }

    /// `Phase::Exit`, `ExitIpiWait`, `ExitFinish` (killalllwps finds no sibling in the
    /// kernel: nothing is in flight); returns `result` (ok, or segv for a fatal fault).
    fn exit_quiet(&mut self, cpu: usize, pid: u32, result: Outcome) -> Outcome {
        for i in 0..self.proc(pid).threads.len() {
            if let ThreadState::Running(c) = self.proc(pid).threads[i].state {
                self.cpu_idle(c as usize);
            }
            self.proc_mut(pid).threads[i].state = ThreadState::Dead;
        }
        self.umtx_drop_sleepers(pid);
        self.pmap_remove_pages(cpu, pid);
        self.proc_mut(pid).map.generation += 1;
        self.quiet_ipi_wait(cpu);
        while let Some(e) = self.proc_mut(pid).map.entries.pop() {
            self.vm_object_deallocate(cpu, e.object);
        }
        self.proc_mut(pid).alive = false;
        debug_assert!(self.live_procs() <= MAX_PROCS);
        result
    }

    /// fork's `start`, `Phase::IpiWait` and `finish`.
    fn fork_quiet(&mut self, cpu: usize, pid: u32) -> Outcome {
        if self.live_procs() >= MAX_PROCS {
            return Outcome::Eagain;
        }
        let n = self.proc(pid).map.entries.len();
        for i in 0..n {
            let e = self.proc(pid).map.entries[i];
            if !e.inherit_share && !e.needs_copy {
                if self.kernel.fork_write_protect {
                    for va in e.start..e.end {
                        self.pmap_protect_ro(cpu, pid, va);
                    }
                }
                let pe = &mut self.proc_mut(pid).map.entries[i];
                pe.cow = true;
                pe.needs_copy = true;
            }
        }
        self.proc_mut(pid).map.generation += 1;
        self.quiet_ipi_wait(cpu);
        if self.live_procs() >= MAX_PROCS {
            return Outcome::Eagain;
        }
        let child = self.procs.len() as u32 + 1;
        let mut cp = self.alloc_proc(child);
        for i in 0..self.proc(pid).map.entries.len() {
            let e = self.proc(pid).map.entries[i];
            self.vm_object_reference(e.object);
            cp.map.entries.push(e);
        }
        self.procs.push(cp);
        Outcome::Pid(child)
    }

    /// procfs_read/procfs_write of `t`'s `a`: `start`, `Phase::PageFault`, `Retry` (a forced
    /// write whose fault copied looks the page up again), `Access`.
    fn procfs_quiet(&mut self, cpu: usize, op: Op, t: u32, a: Addr) -> Outcome {
        if !(t >= 1 && (t as usize) <= self.procs.len() && self.proc(t).alive) {
            return Outcome::Esrch;
        }
        let write = matches!(op, Op::ProcfsWrite(..));
        let mut ft = if write { VM_PROT_OVERRIDE_WRITE } else { VM_PROT_READ };
        let enter = self.kernel.vm_fault_page_pmap_enter;
        let mut retried = false;
        loop {
            let (f, cowed) = match self.vm_fault_quiet(cpu, t, a.page, ft, enter) {
                Ok(r) => r,
                Err(FaultErr::Protection) => panic!("vm_fault_page failed where the lookup allows it"),
                Err(FaultErr::Dead) => return Outcome::Esrch,
            };
            self.phys.hold(f);
            if write && cowed && !retried {
                // Retry
                self.arrived |= Point::Retry.bit();
                self.phys.unhold(f);
                retried = true;
                if !self.kernel.retry_keeps_write {
                    ft = VM_PROT_READ;
                }
                continue;
            }
            // Access
            self.arrived |= Point::Access.bit();
            let r = match op {
                Op::ProcfsWrite(_, _, v) => {
                    self.write_word(f, a.word, v);
                    Outcome::Ok
                }
                _ => Outcome::Value(self.phys.get(f).words[a.word as usize]),
            };
            self.phys.unhold(f);
            return r;
        }
    }

    /// umtx_sleep/umtx_wakeup at `a`: `start`, `Phase::PageFault`, `Access`, and for a sleep
    /// `Sleep` with its re-check (which may start over).
    fn umtx_quiet(&mut self, cpu: usize, op: Op, pid: u32, tid: u32, a: Addr) -> Outcome {
        let sleep = matches!(op, Op::UmtxSleep(..));
        let enter = self.kernel.vm_fault_page_pmap_enter;
        loop {
            // start
            let mut ft = if sleep { VM_PROT_WRITE } else { VM_PROT_READ };
            if ft.write && !self.kernel.umtx_fault_write {
                ft = VM_PROT_READ; // before 10192bae: READ only, so no EFAULT
            }
            let f = match self.vm_fault_quiet(cpu, pid, a.page, ft, enter) {
                Ok((f, _)) => f,
                Err(FaultErr::Protection) if sleep => return Outcome::Efault,
                Err(FaultErr::Protection) => panic!("vm_fault_page failed where the lookup allows it"),
                Err(FaultErr::Dead) => return Outcome::Esrch,
            };
            self.phys.hold(f);
            // Access
            self.arrived |= Point::Access.bit();
            let Op::UmtxSleep(_, v) = op else {
                self.wake_where(|s| s.frame == f && s.word == a.word);
                self.phys.unhold(f);
                return Outcome::Ok;
            };
            if self.phys.get(f).words[a.word as usize] != v {
                self.phys.unhold(f);
                return Outcome::Ebusy;
            }
            // Sleep (the hold is kept for the sleep)
            self.arrived |= Point::Sleep.bit();
            self.sleepers.push(Sleeper { pid, tid, frame: f, word: a.word });
            if self.kernel.umtx_recheck {
                let p = self.proc(pid);
                let e = p.map.entries[p.map.lookup(a.page)];
                let mapped = self.vm_page_lookup_chain(e.object, e.offset + (a.page - e.start)).map(|x| x.2);
                if mapped != Some(f) || (ft.write && (!e.prot_write || e.needs_copy)) {
                    self.sleepers.pop();
                    self.phys.unhold(f);
                    continue;
                }
                if self.phys.get(f).words[a.word as usize] != v {
                    self.sleepers.pop();
                    self.phys.unhold(f);
                    return Outcome::Ebusy;
                }
            }
            self.thread_mut(pid, tid).state = ThreadState::Blocked;
            self.cpu_idle(cpu);
            return Outcome::Blocked;
        }
    }
}
