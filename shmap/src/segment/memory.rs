//! Where a segment's bytes are: a shared mapping (of a file, a POSIX shm object, or anonymous
//! memory) or, for tables private to one process, a heap allocation; unmapped or freed on drop.

use std::alloc::Layout;
use std::os::fd::BorrowedFd;
use std::ptr::NonNull;

use crate::error::OpenErrorKind;
use crate::segment::errno::{Step, error};
use crate::segment::header;
use crate::sys;

/// Whether a mapping may be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    ReadWrite,
    /// For [`Segment::inspect`]: even a bug cannot write to what is only being looked at.
    ReadOnly,
}

/// Where a segment's bytes are.
pub(crate) enum Memory {
    Mapped { addr: NonNull<u8>, len: usize },
    Heap { ptr: NonNull<u8>, layout: Layout },
}

impl Memory {
    pub(crate) fn map(
        fd: Option<BorrowedFd<'_>>,
        len: u64,
        access: Access,
    ) -> Result<Memory, OpenErrorKind> {
        let len = usize::try_from(len)
            .map_err(|_| OpenErrorKind::InvalidOptions(format!("{len} bytes exceed usize")))?;
        let writable = access == Access::ReadWrite;
        let addr = sys::mmap_shared(fd, len, writable).map_err(|e| error(Step::Call("mmap"), e))?;
        Ok(Memory::Mapped { addr, len })
    }

    pub(crate) fn heap(len: u64) -> Result<Memory, OpenErrorKind> {
        let layout = usize::try_from(len)
            .ok()
            .and_then(|len| Layout::from_size_align(len, header::PAGE as usize).ok())
            .ok_or_else(|| OpenErrorKind::InvalidOptions(format!("{len} bytes exceed usize")))?;
        // SAFETY: `layout` has a non-zero size (it includes the header).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).ok_or(OpenErrorKind::OutOfMemory { needed: len })?;
        Ok(Memory::Heap { ptr, layout })
    }

    pub(crate) fn base(&self) -> NonNull<u8> {
        match *self {
            Memory::Mapped { addr, .. } => addr,
            Memory::Heap { ptr, .. } => ptr,
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Memory::Mapped { len, .. } => *len,
            Memory::Heap { layout, .. } => layout.size(),
        }
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        match *self {
            // SAFETY: the range is the mapping `map` created; the segment that owned this
            // memory is being dropped, so no reference into it outlives this call.
            Memory::Mapped { addr, len } => unsafe { sys::munmap(addr, len) },
            // SAFETY: `ptr` was allocated by `alloc_zeroed` with this `layout` and is not used
            // after this call, for the same reason.
            Memory::Heap { ptr, layout } => unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) },
        }
    }
}
