//! Physical memory: frames and the page-sized slots of memory behind them. A frame (an
//! allocation, `vm_page`) is owned by at most one `vm_object` (at one page index) and may be
//! held by the kernel (`vm_fault_page` returns a held page; a umtx sleeper holds its page). It
//! is freed when it has neither owner nor holds, and its slot goes back on the free list: the
//! next allocation reuses it (SPEC §3.4), so a stale translation reads or writes the frame's
//! next owner. A frame id is never reused, so a dangling reference stays detectable
//! (`use-after-free`).

pub type FrameId = u32;
pub const NO_FRAME: FrameId = u32::MAX;

#[derive(Clone, Debug)]
pub struct Frame {
    /// The memory slot the frame occupies (`Phys::mem`); after the frame is freed, possibly
    /// another frame's.
    pub slot: u32,
    pub owned: bool,
    pub hold: u32,
    pub freed: bool,
    /// vm_page's dirty flag: the PTEs' modified bits gathered so far, a copy-on-write, a
    /// kernel write (SPEC §3.4). A page is dirty if this or a PTE mapping it says so.
    pub dirty: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Phys {
    pub frames: Vec<Frame>,
    /// The words of each slot.
    pub mem: Vec<[u32; 4]>,
    /// Slots of freed frames, the most recently freed last (reused first).
    pub free_slots: Vec<u32>,
    /// How many frames have been freed: while 0, nothing can dangle.
    pub freed_count: u32,
}

impl Phys {
    pub fn clear(&mut self) {
        self.frames.clear();
        self.mem.clear();
        self.free_slots.clear();
        self.freed_count = 0;
    }

    /// vm_page_alloc: a new frame holding `words`, in the most recently freed slot if any.
    pub fn alloc(&mut self, words: [u32; 4]) -> FrameId {
        let slot = match self.free_slots.pop() {
            Some(s) => {
                self.mem[s as usize] = words;
                s
            }
            None => {
                self.mem.push(words);
                (self.mem.len() - 1) as u32
            }
        };
        self.frames.push(Frame { slot, owned: true, hold: 0, freed: false, dirty: false });
        (self.frames.len() - 1) as FrameId
    }

    #[inline]
    pub fn get(&self, f: FrameId) -> &Frame {
        &self.frames[f as usize]
    }

    #[inline]
    pub fn get_mut(&mut self, f: FrameId) -> &mut Frame {
        &mut self.frames[f as usize]
    }

    /// The words behind frame `f` (its slot's, whoever owns the slot now).
    #[inline]
    pub fn words(&self, f: FrameId) -> [u32; 4] {
        self.mem[self.frames[f as usize].slot as usize]
    }

    #[inline]
    pub fn word(&self, f: FrameId, w: u8) -> u32 {
        self.mem[self.frames[f as usize].slot as usize][w as usize]
    }

    #[inline]
    pub fn set_word(&mut self, f: FrameId, w: u8, v: u32) {
        let s = self.frames[f as usize].slot as usize;
        self.mem[s][w as usize] = v;
    }

    pub fn is_freed(&self, f: FrameId) -> bool {
        self.frames[f as usize].freed
    }

    /// vm_page_hold
    pub fn hold(&mut self, f: FrameId) {
        let fr = self.get_mut(f);
        assert!(!fr.freed, "vm_page_hold on freed frame {f}");
        fr.hold += 1;
    }

    /// vm_page_unhold: the last release of an orphaned frame frees it.
    pub fn unhold(&mut self, f: FrameId) {
        let fr = self.get_mut(f);
        assert!(fr.hold > 0, "vm_page_unhold of frame {f} without a hold");
        fr.hold -= 1;
        self.maybe_free(f);
    }

    /// The owning object lets go of the frame (object termination, pageout).
    pub fn disown(&mut self, f: FrameId) {
        let fr = self.get_mut(f);
        assert!(fr.owned, "frame {f} disowned twice");
        fr.owned = false;
        self.maybe_free(f);
    }

    fn maybe_free(&mut self, f: FrameId) {
        let fr = self.get_mut(f);
        if !fr.owned && fr.hold == 0 {
            fr.freed = true;
            let slot = fr.slot;
            self.freed_count += 1;
            self.free_slots.push(slot);
        }
    }
}

/// `[0x5,0x0,0x0,0x0]`, as traces print values.
pub fn hex_words(w: [u32; 4]) -> String {
    format!("[{:#x},{:#x},{:#x},{:#x}]", w[0], w[1], w[2], w[3])
}
