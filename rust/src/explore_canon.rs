//! explore's canonical state hash (docs/contract.md §5): the machine and the judge written
//! as words with frames and objects renamed in order of first reference, so states equal up
//! to allocation order hash alike. A child of `explore.rs`.

use super::*;

pub(super) struct Canon {
    /// SPEC §3.4's lines are in the domain: the PTE modified bits and the pages' dirty flags
    /// then count (without msync and pageout nothing reads them; a TLB entry's dirty bit
    /// always counts: a store through a clean entry re-checks the PTE).
    vm: bool,
    /// CPUs are renamed too (`Config::symmetry`, 2 or 3 CPUs): the hash is the least over the
    /// renamings that order the CPUs by `cpu_sig`.
    sym: bool,
    /// The renaming being written: CPU `c` is written as `perm[c]`; `inv` is its inverse.
    perm: [u8; 8],
    inv: [u8; 8],
    buf: Vec<u64>,
    fmap: Vec<u32>,
    omap: Vec<u32>,
    frames: Vec<u32>,
    objs: Vec<u32>,
}

impl Canon {
    #[cfg(test)]
    pub(super) fn new(vm: bool) -> Canon {
        Canon::with_symmetry(vm, false)
    }

    pub(super) fn with_symmetry(vm: bool, sym: bool) -> Canon {
        let id = [0, 1, 2, 3, 4, 5, 6, 7];
        Canon { vm, sym, perm: id, inv: id, buf: Vec::with_capacity(512), fmap: Vec::new(), omap: Vec::new(), frames: Vec::new(), objs: Vec::new() }
    }

    /// The CPU renaming `p` (a permutation of 0..n; identity beyond).
    fn set_perm(&mut self, p: &[u8]) {
        for c in 0..8 {
            self.perm[c] = c as u8;
        }
        for (c, &to) in p.iter().enumerate() {
            self.perm[c] = to;
            self.inv[to as usize] = c as u8;
        }
        for c in p.len()..8 {
            self.inv[c] = c as u8;
        }
    }

    /// A CPU mask under the renaming.
    fn mask(&self, m: u8) -> u64 {
        (0..8).filter(|&c| m & (1 << c) != 0).fold(0u64, |acc, c| acc | 1 << self.perm[c])
    }

    #[inline]
    fn f(&mut self, f: u32) -> u64 {
        if f == NO_FRAME {
            return u32::MAX as u64;
        }
        let i = f as usize;
        if self.fmap[i] == u32::MAX {
            self.fmap[i] = self.frames.len() as u32;
            self.frames.push(f);
        }
        self.fmap[i] as u64
    }

    #[inline]
    fn o(&mut self, o: u32) -> u64 {
        let i = o as usize;
        if i >= self.omap.len() {
            return u32::MAX as u64;
        }
        if self.omap[i] == u32::MAX {
            self.omap[i] = self.objs.len() as u32;
            self.objs.push(o);
        }
        self.omap[i] as u64
    }

    fn kop(&mut self, m: &Machine, k: &KOp) {
        step_code(&Step { cpu: 0, op: k.op, until: None }, &mut self.buf);
        let fs = &k.fs;
        let gen_eq = fs.pid >= 1
            && (fs.pid as usize) <= m.procs.len()
            && m.proc(fs.pid).map.generation == fs.map_gen;
        let w = [
            (k.pid as u64) << 32 | k.tid as u64,
            k.phase as u64 | (fs.phase as u64) << 8 | (fs.va as u64) << 16 | (fs.ft.write as u64) << 24
                | (fs.ft.override_write as u64) << 25 | (fs.writable as u64) << 26 | (gen_eq as u64) << 27
                | (fs.cowed as u64) << 28 | (k.paused as u64) << 29 | (k.retried as u64) << 30
                | (fs.pindex as u64) << 32 | (fs.found_idx as u64) << 40 | (k.tries as u64) << 48,
            fs.pid as u64 | (k.map_lock as u64) << 32 | (k.map_read as u64) << 48,
            k.at.map_or(0, |p| p as u64 + 1),
            outcome_code(k.result),
        ];
        self.buf.extend_from_slice(&w);
        let first = self.o(fs.first);
        let found = self.o(fs.found_obj);
        let fr = self.f(fs.frame);
        let busy = self.f(k.busy);
        let held = self.f(k.held);
        let orphan = self.f(k.orphan);
        let unmap_after = self.f(fs.unmap_after); // cow-make-before-break's old frame
        self.buf.extend_from_slice(&[first, found, fr, busy, held, orphan, unmap_after]);
        let wait = match k.waiting {
            None => 0,
            Some(Lock::Busy(f)) => 1 | self.f(f) << 8,
            Some(Lock::Map(p)) => 2 | (p as u64) << 8,
            Some(Lock::Pte(p, va)) => 3 | (p as u64) << 8 | (va as u64) << 40,
            Some(Lock::Siblings(p)) => 4 | (p as u64) << 8,
            Some(Lock::MapReaders(p)) => 5 | (p as u64) << 8,
        };
        self.buf.push(wait);
        // madvise, SPEC §3.4's map ops, msync and pageout keep an object in aux (pageout and
        // msync the page's index in aux2); switch keeps address spaces (pids).
        let obj = matches!(k.op, Op::Madvise(_) | Op::Munmap(_) | Op::Mmap(_) | Op::Mremap(..) | Op::Msync(_) | Op::Pageout(..));
        let aux = if obj { self.o(k.aux) } else { k.aux as u64 };
        self.buf.push(aux | (k.aux2 as u64) << 32);
    }

    /// The canonical form of (machine, judge) in `self.buf`.
    fn build(&mut self, m: &Machine, j: &Lin) {
        self.buf.clear();
        self.frames.clear();
        self.objs.clear();
        self.fmap.clear();
        self.fmap.resize(m.phys.frames.len(), u32::MAX);
        self.omap.clear();
        self.omap.resize(m.objects.len(), u32::MAX);
        self.cpus(m);
        self.procs(m);
        self.vm(m);
        self.buf.push(u64::MAX);
        j.canon(&mut self.buf, &self.perm, &self.inv);
    }

    /// Each CPU: what it runs, its TLB (frames renamed), its op in flight.
    fn cpus(&mut self, m: &Machine) {
        for i in 0..m.cpus.len() {
            let c = &m.cpus[self.inv[i] as usize];
            let run = c.running.map_or(0, |(p, t)| 1 | (p as u64) << 8 | (t as u64) << 32);
            self.buf.push(run);
            self.buf.push(c.space as u64 | (c.tlb.entries.len() as u64) << 32);
            for e in &c.tlb.entries {
                let f = self.f(e.frame);
                self.buf.push(e.asid as u64 | (e.va as u64) << 32 | (e.writable as u64) << 40 | (e.dirty as u64) << 41);
                self.buf.push(f);
            }
            match &c.kop {
                None => self.buf.push(0),
                Some(k) => {
                    self.buf.push(1);
                    self.kop(m, k);
                }
            }
        }
    }

    /// Each process: its threads' states, map entries (objects renamed), PTEs.
    fn procs(&mut self, m: &Machine) {
        self.buf.push(m.procs.len() as u64);
        for p in &m.procs {
            let mut ts = p.alive as u64;
            for (i, t) in p.threads.iter().enumerate() {
                let s = match t.state {
                    crate::proc::ThreadState::Runnable => 1,
                    crate::proc::ThreadState::Running(c) => 2 + self.perm[c as usize] as u64,
                    crate::proc::ThreadState::Blocked => 12,
                    crate::proc::ThreadState::Dead => 13,
                };
                ts |= s << (4 + 4 * i);
            }
            self.buf.push(ts);
            self.buf.push(p.map.entries.len() as u64 | self.mask(p.pmap.pm_active) << 8);
            for e in &p.map.entries {
                let o = self.o(e.object);
                self.buf.push(
                    e.start as u64 | (e.end as u64) << 8 | (e.offset as u64) << 16 | (e.prot_write as u64) << 24
                        | (e.max_write as u64) << 25 | (e.cow as u64) << 26 | (e.needs_copy as u64) << 27
                        | (e.inherit_share as u64) << 28 | o << 32,
                );
            }
            for pte in &p.pmap.pte {
                let f = self.f(pte.frame);
                self.buf.push(f | (pte.writable as u64) << 40 | ((pte.modified && self.vm) as u64) << 41);
            }
        }
    }

    /// The rest of the VM: sleepers, shootdown records, the objects reached and the frames.
    fn vm(&mut self, m: &Machine) {
        let fo = self.o(m.file_object);
        let so = self.o(m.shm_object);
        let df = self.o(m.data_file_object);
        self.buf.push(fo | so << 32);
        self.buf.push(df);
        let mut sl = m.sleepers.clone();
        sl.sort_unstable_by_key(|s| (s.pid, s.tid, s.word, s.frame));
        self.buf.push(sl.len() as u64);
        for s in &sl {
            let f = self.f(s.frame);
            self.buf.push((s.pid as u64) << 32 | s.tid as u64);
            self.buf.push(f | (s.word as u64) << 40);
        }
        self.buf.push(m.invals.len() as u64);
        for r in &m.invals {
            self.buf.push(
                self.perm[r.owner as usize] as u64 | (r.va as u64) << 8 | self.mask(r.pending) << 16 | (r.locked as u64) << 24
                    | (r.asid as u64) << 32,
            );
            let f = self.f(r.frame); // a COW's pmap_remove_all of that page waits for the record
            self.buf.push(f);
        }
        // the data file's backing store and the swap slots (objects renamed)
        self.buf.push(m.data_file[0] as u64 | (m.data_file[1] as u64) << 32);
        self.buf.push(m.data_file[2] as u64 | (m.data_file[3] as u64) << 32);
        let mut swap: Vec<(u64, u8, [u32; 4])> = Vec::with_capacity(m.swap.len());
        for s in &m.swap {
            let o = self.o(s.obj);
            swap.push((o, s.idx, s.words));
        }
        swap.sort_unstable();
        self.buf.push(swap.len() as u64);
        for (o, idx, w) in swap {
            self.buf.push(o | (idx as u64) << 32);
            self.buf.push(w[0] as u64 | (w[1] as u64) << 32);
            self.buf.push(w[2] as u64 | (w[3] as u64) << 32);
        }
        // Objects reached, in order of first reference (their backing objects join the list).
        let mut i = 0;
        while i < self.objs.len() {
            let ob = &m.objects[self.objs[i] as usize];
            let (otype, size, pages, backing, boff, rc, sc) =
                (ob.otype as u64, ob.size, ob.pages, ob.backing, ob.backing_offset, ob.ref_count, ob.shadow_count);
            let b = backing.map_or(u32::MAX as u64, |b| self.o(b));
            self.buf.push(otype | (size as u64) << 8 | (boff as u64) << 16 | b << 32);
            self.buf.push(rc as u64 | (sc as u64) << 32);
            for f in pages {
                let c = self.f(f);
                self.buf.push(c);
            }
            i += 1;
        }
        for i in 0..self.frames.len() {
            let fr = m.phys.get(self.frames[i]);
            let w = m.phys.words(self.frames[i]);
            self.buf.push(w[0] as u64 | (w[1] as u64) << 32);
            self.buf.push(w[2] as u64 | (w[3] as u64) << 32);
            // The slot, as the first canonical frame that occupies it (freed frames alias).
            let slot = self.frames[..i].iter().position(|&g| m.phys.get(g).slot == fr.slot).unwrap_or(i) as u64;
            self.buf.push(
                fr.owned as u64 | (fr.freed as u64) << 1 | ((fr.dirty && self.vm) as u64) << 2 | (fr.hold as u64) << 8 | slot << 32,
            );
        }
    }

    pub(super) fn hash(&mut self, m: &Machine, j: &Lin) -> u128 {
        let n = m.cpus.len();
        if !self.sym || !(2..=3).contains(&n) {
            self.set_perm(&[]);
            self.build(m, j);
            return hash128(&self.buf);
        }
        // The least hash over the renamings that list the CPUs in `cpu_sig` order: a state and
        // any renaming of it have the same such set of written forms, so the same least hash.
        let mut sig = [0u64; 3]; // no allocation: this runs for every state generated
        for (c, cpu) in m.cpus.iter().enumerate() {
            sig[c] = cpu_sig(cpu);
        }
        let mut best = u128::MAX;
        for p in PERMS[n - 2] {
            // p[c] is where CPU c goes: the written order must not decrease in sig
            let mut order = [0u8; 3];
            for c in 0..n {
                order[p[c] as usize] = c as u8;
            }
            if (1..n).any(|i| sig[order[i - 1] as usize] > sig[order[i] as usize]) {
                continue;
            }
            self.set_perm(&p[..n]);
            self.build(m, j);
            best = best.min(hash128(&self.buf));
        }
        best
    }
}

/// The permutations of 2 and 3 CPUs.
const PERMS: [&[[u8; 3]]; 2] =
    [&[[0, 1, 2], [1, 0, 2]], &[[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]];

/// What a CPU is, whatever its number and the names of frames: renamings that order CPUs by it
/// are the only ones tried (ties try every order among them).
fn cpu_sig(c: &crate::machine::Cpu) -> u64 {
    let run = c.running.map_or(0, |(p, t)| 1 | (p as u64) << 1 | (t as u64) << 16);
    let kop = c.kop.as_ref().map_or(0, |k| 1 + (k.phase as u64) * 64 + (k.at.map_or(0, |p| p as u64 + 1)));
    run << 32 | (c.space as u64) << 24 | kop << 8 | c.tlb.entries.len() as u64
}

/// Two independent 64-bit multiply-xorshift lanes, finalised with splitmix64.
fn hash128(words: &[u64]) -> u128 {
    #[inline]
    fn fin(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
    let mut a: u64 = 0x243f6a8885a308d3;
    let mut b: u64 = 0x13198a2e03707344 ^ words.len() as u64;
    for &w in words {
        a = (a ^ w).wrapping_mul(0x9e3779b97f4a7c15);
        a ^= a >> 29;
        b = (b ^ w.rotate_left(23)).wrapping_mul(0xc2b2ae3d27d4eb4f);
        b ^= b >> 31;
    }
    ((fin(a) as u128) << 64) | fin(b ^ a.rotate_left(7)) as u128
}

#[derive(Default)]
pub(super) struct IdHash(u64);
impl std::hash::Hasher for IdHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!()
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}
pub(super) type Table = HashMap<u128, u8, std::hash::BuildHasherDefault<IdHash>>;

