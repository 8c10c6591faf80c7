//! Physical frames. A frame is owned by at most one `vm_object` (at one page index) and may be
//! held by the kernel (`vm_fault_page` returns a held page; a umtx sleeper holds its page).
//! It is freed when it has neither owner nor holds. Freed frames are never reused, so a
//! dangling reference stays detectable (`use-after-free`).

pub type FrameId = u32;
pub const NO_FRAME: FrameId = u32::MAX;

#[derive(Clone, Debug)]
pub struct Frame {
    pub words: [u32; 4],
    pub owned: bool,
    pub hold: u32,
    pub freed: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Phys {
    pub frames: Vec<Frame>,
    /// How many frames have been freed: while 0, nothing can dangle.
    pub freed_count: u32,
}

impl Phys {
    pub fn alloc(&mut self, words: [u32; 4]) -> FrameId {
        self.frames.push(Frame { words, owned: true, hold: 0, freed: false });
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

    /// The owning object lets go of the frame (object termination).
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
            self.freed_count += 1;
        }
    }
}
