//! Bounded reading of binary formats (STYLE P2; the shape of rustls's `codec::Reader`): a
//! read never goes past the end of its bytes, a length-prefixed part is read through a
//! sub-reader over exactly its bytes, and a format that must be consumed exactly says so with
//! [`Reader::finish`]. Integers are big-endian, as in every format that uses this reader.
//!
//! The errors carry no detail: each format maps them into its own error, with its own words
//! for where the bytes ran out.

/// A read asked for more bytes than are left.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("truncated")]
pub struct Truncated;

/// Bytes are left where the format ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("trailing bytes")]
pub struct Trailing;

/// Reads a byte slice front to back, never past its end. `Copy`, so a header can be peeked
/// by reading a copy.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, at its start.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes read so far (the offset of the next read within the reader's bytes).
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Nothing is left.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The next `n` bytes, borrowed from the underlying slice.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Truncated> {
        if n > self.remaining() {
            return Err(Truncated);
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<(), Truncated> {
        self.take(n).map(|_| ())
    }

    /// A reader over exactly the next `n` bytes (a length-prefixed part); this reader moves
    /// past them.
    pub fn sub(&mut self, n: usize) -> Result<Reader<'a>, Truncated> {
        self.take(n).map(Reader::new)
    }

    /// Everything left; the reader is then empty.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], Truncated> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A byte.
    pub fn u8(&mut self) -> Result<u8, Truncated> {
        self.array::<1>().map(|[b]| b)
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, Truncated> {
        self.array().map(u16::from_be_bytes)
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, Truncated> {
        self.array().map(u32::from_be_bytes)
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, Truncated> {
        self.array().map(u64::from_be_bytes)
    }

    /// Ends the read: every byte must have been consumed.
    pub fn finish(self) -> Result<(), Trailing> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Trailing)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_values_and_stops_at_the_end() {
        let bytes = [1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 4, 5, 6];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u16(), Ok(2));
        assert_eq!(r.u32(), Ok(3));
        assert_eq!(r.u64(), Ok(4));
        assert_eq!(r.position(), 15);
        assert_eq!(r.remaining(), 2);
        // A failed read consumes nothing.
        assert_eq!(r.u32(), Err(Truncated));
        assert_eq!(r.array::<3>(), Err(Truncated));
        assert_eq!(r.remaining(), 2);
        assert_eq!(r.array::<2>(), Ok([5, 6]));
        assert!(r.is_empty());
        assert_eq!(r.u8(), Err(Truncated));
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn lengths_from_the_wire_cannot_overflow_or_overrun() {
        let bytes = [0u8; 8];
        let mut r = Reader::new(&bytes);
        r.skip(3).unwrap();
        assert_eq!(r.take(usize::MAX), Err(Truncated));
        assert_eq!(r.skip(6), Err(Truncated));
        assert!(r.sub(usize::MAX).is_err());
        assert_eq!(r.take(5).map(<[u8]>::len), Ok(5));
        assert_eq!(r.take(0), Ok(&[][..]));
    }

    #[test]
    fn a_sub_reader_sees_only_its_part() {
        let bytes = [0, 0, 0, 2, 7, 8, 9];
        let mut r = Reader::new(&bytes);
        let len = r.u32().unwrap() as usize;
        let mut part = r.sub(len).unwrap();
        assert_eq!(r.position(), 6, "the outer reader moved past the part");
        assert_eq!(part.remaining(), 2);
        assert_eq!(part.u16(), Ok(0x0708));
        assert_eq!(
            part.u8(),
            Err(Truncated),
            "the part ends before the outer bytes do"
        );
        assert_eq!(part.finish(), Ok(()));
        assert_eq!(r.u8(), Ok(9));
        // Slices keep the lifetime of the underlying bytes, not of the reader.
        let mut r = Reader::new(&bytes);
        let head = r.sub(4).unwrap().rest();
        assert!(std::ptr::eq(head.as_ptr(), bytes.as_ptr()));
    }

    #[test]
    fn trailing_bytes_are_refused_by_finish() {
        let bytes = [1, 2, 3];
        let mut r = Reader::new(&bytes);
        r.u16().unwrap();
        assert_eq!(r.finish(), Err(Trailing));
        assert_eq!(r.rest(), &[3]);
        assert_eq!(r.finish(), Ok(()));
        assert_eq!(Reader::new(&[]).finish(), Ok(()));
    }
}
